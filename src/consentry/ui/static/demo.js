// The demo page's live view of what the page's tags see (ui/templates/demo.html); a file, not an
// inline script, so that the page's Content-Security-Policy allows scripts from this server only.
(function () {
  function show(id, v) { document.getElementById(id).textContent = typeof v === "string" ? v : JSON.stringify(v, null, 1); }
  function refresh() {
    var calls = (window.dataLayer || []).filter(function (a) { return a && a[0] === "consent"; })
      .map(function (a) { return "gtag('consent', '" + a[1] + "', " + JSON.stringify(a[2]) + ")"; });
    show("demo-consent-mode", calls.join("\n") || "(none yet)");
    window.__tcfapi("addEventListener", 2, function (d, ok) {
      if (ok) { show("demo-tcf", {eventStatus: d.eventStatus, gdprApplies: d.gdprApplies, tcString: d.tcString, purposeConsents: d.purpose.consents}); window.__tcfapi("removeEventListener", 2, function () {}, d.listenerId); }
    });
    window.__gpp("ping", function (d) { show("demo-gpp", {signalStatus: d.signalStatus, applicableSections: d.applicableSections, gppString: d.gppString}); });
    var state = window.Consentry && window.Consentry.state();
    show("demo-cookie", document.cookie.indexOf("consentry=") >= 0 && state ? state : "(no choice yet)");
  }
  window.addEventListener("consentry:change", refresh);
  refresh();
})();
