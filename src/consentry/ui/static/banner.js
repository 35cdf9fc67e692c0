/*! Consentry banner | Apache-2.0 | Consent Mode v2, IAB __tcfapi (TCF 2.3) and __gpp (GPP 1.1), GPC.
 * Put it first in <head>, without async or defer, so that the Consent Mode default precedes tags:
 *   <script src="https://consent.example.com/banner.js" data-site="TENANT"></script>
 * The choice is recorded by the server, which sets a first-party cookie holding a signed token;
 * later page loads read that cookie and make no request at all. */
(function (w, d) {
  "use strict";
  var script = d.currentScript || d.querySelector("script[data-site]");
  var ds = (script && script.dataset) || {};
  var site = ds.site || "default";
  var api = (ds.api || (script && script.src ? new URL(script.src, location.href).origin : location.origin)).replace(/\/$/, "");
  var TYPES = ["ad_storage", "analytics_storage", "ad_user_data", "ad_personalization",
    "functionality_storage", "personalization_storage", "security_storage"];
  var gpcOn = navigator.globalPrivacyControl === true;
  var state = null;      // the token's claims, or the config's defaults before a choice
  var config = null;     // GET /v1/banner/{site}/config
  var loading = null;    // the pending config request
  var shown = false;     // whether the banner is on screen
  var tcfStatus = null;  // TCF eventStatus once there is something to say
  var tcfL = {}, gppL = {}, nextId = 1, root = null, reopen = null;

  // ---- Google Consent Mode v2: the default, before any tag runs.
  w.dataLayer = w.dataLayer || [];
  if (typeof w.gtag !== "function") w.gtag = function () { w.dataLayer.push(arguments); };
  function gtag() { w.gtag.apply(w, arguments); }
  var denied = { wait_for_update: 500 };
  TYPES.forEach(function (t) { denied[t] = "denied"; });
  gtag("consent", "default", denied);

  // ---- helpers
  function each(o, f) { for (var k in o) if (Object.prototype.hasOwnProperty.call(o, k)) f(k, o[k]); }
  function ids(list, n) {
    var o = {}, i;
    for (i = 1; i <= (n || 0); i++) o[i] = false;
    (list || []).forEach(function (x) { o[x] = true; });
    return o;
  }
  function bits(list, n) {
    var a = [], i;
    for (i = 1; i <= n; i++) a.push((list || []).indexOf(i) >= 0);
    return a;
  }
  function el(tag, attrs, kids) {
    var e = d.createElement(tag);
    each(attrs || {}, function (k, v) {
      if (v === false || v == null) return;
      if (k === "text") e.textContent = v; else e.setAttribute(k, v === true ? "" : v);
    });
    (kids || []).forEach(function (k) { if (k) e.appendChild(k); });
    return e;
  }
  function emit(name, detail) {
    try { w.dispatchEvent(new CustomEvent(name, { detail: detail })); } catch (e) { /* old browser */ }
  }
  function readCookie() {
    var m = d.cookie.match(/(?:^|;\s*)consentry=([^;]+)/);
    if (!m) return null;
    try {
      var p = m[1].split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      var c = JSON.parse(decodeURIComponent(escape(atob(p))));
      return c.typ === "consent" && c.tnt === site && c.exp * 1000 > Date.now() ? c : null;
    } catch (e) { return null; }
  }

  // ---- IAB TCF CMP API (__tcfapi): ping, addEventListener, removeEventListener
  function tcData(listenerId) {
    var c = state || {}, t = c.tcd || {};
    return {
      tcString: c.tcf || "", tcfPolicyVersion: t.pv || 5, cmpId: t.cmp || 0, cmpVersion: t.cmpv || 0,
      gdprApplies: c.reg === "opt_in", eventStatus: tcfStatus, cmpStatus: "loaded", listenerId: listenerId,
      isServiceSpecific: true, useNonStandardTexts: false, publisherCC: t.cc || "AA", purposeOneTreatment: false,
      purpose: { consents: ids(t.pc, 11), legitimateInterests: ids(t.pl, 11) },
      vendor: { consents: ids(t.vc), legitimateInterests: ids(t.vl), disclosedVendors: ids(t.vd) },
      specialFeatureOptins: ids(t.sf, 2),
      publisher: { consents: ids(t.ppc, 11), legitimateInterests: ids(t.ppl, 11),
        customPurpose: { consents: {}, legitimateInterests: {} }, restrictions: {} }
    };
  }
  function displayStatus() { return shown ? "visible" : state ? "hidden" : "disabled"; }
  var prevTcf = w.__tcfapi, prevGpp = w.__gpp;
  w.__tcfapi = function (cmd, version, cb, param) {
    if (typeof cb !== "function") return;
    var t = (state && state.tcd) || {};
    if (cmd === "ping") {
      return cb({ gdprApplies: state ? state.reg === "opt_in" : undefined, cmpLoaded: true,
        cmpStatus: "loaded", displayStatus: displayStatus(), apiVersion: "2.3", cmpVersion: t.cmpv,
        cmpId: t.cmp, gvlVersion: t.vlv, tcfPolicyVersion: t.pv }, true);
    }
    if (cmd === "addEventListener") {
      var id = nextId++;
      tcfL[id] = cb;
      if (tcfStatus) cb(tcData(id), true);
      return;
    }
    if (cmd === "removeEventListener") {
      var ok = !!tcfL[param];
      delete tcfL[param];
      return cb(ok, true);
    }
    cb(null, false);
  };

  // ---- IAB GPP CMP API (__gpp): ping, addEventListener, removeEventListener, hasSection, getSection
  function sections() {
    var o = {}, t = state && state.tcd;
    if (state && state.usn) o.usnat = state.usn;
    if (t) {
      o.tcfeuv2 = { Version: 2, CmpId: t.cmp, CmpVersion: t.cmpv, VendorListVersion: t.vlv,
        PolicyVersion: t.pv, IsServiceSpecific: true, PublisherCountryCode: t.cc,
        PurposeConsents: bits(t.pc, 24), PurposeLegitimateInterests: bits(t.pl, 24),
        SpecialFeatureOptins: bits(t.sf, 12), VendorConsents: t.vc, VendorLegitimateInterests: t.vl,
        VendorsDisclosed: t.vd, PublisherPurposesConsents: bits(t.ppc, 24),
        PublisherPurposesLITransparency: bits(t.ppl, 24) };
    }
    return o;
  }
  function pingData() {
    var sec = !state ? [] : state.reg === "opt_in" ? [2] : [7];
    return { gppVersion: "1.1", cmpStatus: "loaded", cmpDisplayStatus: displayStatus(),
      signalStatus: state ? "ready" : "not ready", supportedAPIs: ["2:tcfeuv2", "7:usnat"],
      cmpId: (state && state.tcd && state.tcd.cmp) || 0, sectionList: sec,
      applicableSections: sec.length ? sec : [-1], gppString: state ? state.gpp : "",
      parsedSections: sections() };
  }
  function gppEvent(name, data, id) {
    return { eventName: name, listenerId: id, data: data, pingData: pingData() };
  }
  w.__gpp = function (cmd, cb, param) {
    if (typeof cb !== "function") return;
    var s = sections();
    switch (cmd) {
      case "ping": return cb(pingData(), true);
      case "addEventListener":
        var id = nextId++;
        gppL[id] = cb;
        return cb(gppEvent("listenerRegistered", true, id), true);
      case "removeEventListener":
        var ok = !!gppL[param];
        delete gppL[param];
        return cb(gppEvent("listenerRemoved", ok, param), true);
      case "hasSection": return cb(s[param] !== undefined, true);
      case "getSection": return cb(s[param] === undefined ? null : s[param], true);
      case "getField":
        var f = String(param).split(".");
        return cb(s[f[0]] && f[1] in s[f[0]] ? s[f[0]][f[1]] : null, true);
    }
    cb(null, false);
  };

  function notify(why) {
    if (tcfStatus) each(tcfL, function (id, cb) { cb(tcData(+id), true); });
    each(gppL, function (id, cb) {
      cb(gppEvent("cmpDisplayStatus", displayStatus(), +id), true);
      if (state) {
        cb(gppEvent("signalStatus", "ready", +id), true);
        cb(gppEvent("sectionChange", state.reg === "opt_in" ? "tcfeuv2" : "usnat", +id), true);
      }
    });
    emit("consentry:change", { state: state, reason: why });
  }

  // Calls queued by an IAB stub before this script ran, and calls from other frames.
  try {
    var q = typeof prevTcf === "function" ? prevTcf() : null;
    if (q && q.forEach) q.forEach(function (a) { w.__tcfapi.apply(w, a); });
  } catch (e) { /* not a stub */ }
  if (prevGpp && prevGpp.queue && prevGpp.queue.forEach) {
    prevGpp.queue.forEach(function (a) { w.__gpp.apply(w, a); });
  }
  function locator(name) {
    if (w.frames[name]) return;
    if (!d.body) return setTimeout(function () { locator(name); }, 5);
    d.body.appendChild(el("iframe", { name: name, style: "display:none", title: name, hidden: true }));
  }
  locator("__tcfapiLocator");
  locator("__gppLocator");
  w.addEventListener("message", function (e) {
    var m = e.data, json = typeof m === "string";
    if (json) { try { m = JSON.parse(m); } catch (x) { return; } }
    var call = m && (m.__tcfapiCall || m.__gppCall);
    if (!call || !e.source) return;
    var isTcf = !!m.__tcfapiCall;
    var reply = function (value, ok) {
      var r = {};
      r[isTcf ? "__tcfapiReturn" : "__gppReturn"] = { returnValue: value, success: ok, callId: call.callId };
      e.source.postMessage(json ? JSON.stringify(r) : r, "*");
    };
    if (isTcf) w.__tcfapi(call.command, call.version, reply, call.parameter);
    else w.__gpp(call.command, reply, call.parameter, call.version);
  });

  // ---- state
  function apply(claims, status) {
    state = claims;
    tcfStatus = status;
    gtag("consent", "update", claims.cm);
    notify(status);
    showReopen();
  }

  function loadConfig() {
    if (loading) return loading;
    var qs = [];
    if (gpcOn) qs.push("gpc=1");
    if (ds.jurisdiction) qs.push("j=" + encodeURIComponent(ds.jurisdiction));
    loading = fetch(api + "/v1/banner/" + encodeURIComponent(site) + "/config" + (qs.length ? "?" + qs.join("&") : ""),
      { credentials: "omit" })
      .then(function (r) { if (!r.ok) throw new Error("config " + r.status); return r.json(); })
      .then(function (c) { config = c; return c; });
    loading.catch(function () { loading = null; });
    return loading;
  }

  // ---- the banner
  var CSS = "#consentry-banner{position:fixed;z-index:2147483646;left:0;right:0;bottom:0;max-height:85vh;overflow:auto;" +
    "background:#fff;color:#1a1a1a;border-top:3px solid #1d4ed8;box-shadow:0 -4px 24px rgba(0,0,0,.25);" +
    "font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;padding:18px max(16px,calc(50vw - 420px))}" +
    "#consentry-banner h2{font-size:19px;margin:0 0 6px}#consentry-banner p{margin:0 0 10px}" +
    "#consentry-banner ul{list-style:none;margin:0 0 12px;padding:0}" +
    "#consentry-banner li{display:flex;flex-wrap:wrap;align-items:baseline;gap:4px 10px;padding:7px 0;border-top:1px solid #d4d4d8}" +
    "#consentry-banner label{font-weight:600;flex:1 1 12em}#consentry-banner input{width:20px;height:20px;accent-color:#1d4ed8;margin:0;align-self:center}" +
    "#consentry-banner details{flex:1 1 100%;margin-left:30px;color:#3f3f46}#consentry-banner summary{cursor:pointer;color:#1d4ed8;width:max-content}" +
    ".cy-tag{font-size:13px;color:#3f3f46}.cy-gpc{background:#ecfdf5;border:1px solid #047857;color:#064e3b;padding:6px 10px;border-radius:6px}" +
    ".cy-row{display:flex;flex-wrap:wrap;gap:10px}.cy-btn{flex:1 1 10em;min-height:44px;font:600 15px system-ui,sans-serif;" +
    "border:2px solid #1d4ed8;border-radius:6px;background:#1d4ed8;color:#fff;cursor:pointer;padding:8px 14px}" +
    ".cy-btn:hover{background:#1e3a8a}#consentry-banner :focus-visible,#consentry-reopen:focus-visible{outline:3px solid #b45309;outline-offset:2px}" +
    "#consentry-banner a{color:#1d4ed8}.cy-links{font-size:14px;margin-top:10px}" +
    "#consentry-reopen{position:fixed;z-index:2147483645;left:12px;bottom:12px;font:600 14px system-ui,sans-serif;background:#fff;" +
    "color:#1d4ed8;border:2px solid #1d4ed8;border-radius:20px;padding:7px 14px;cursor:pointer}";

  function render(c, current) {
    var t = c.texts, list = el("ul");
    c.purposes.forEach(function (p) {
      var id = "cy-p-" + p.id, fixed = !p.choosable || p.gpc_locked;
      var on = p.gpc_locked ? false : p.required ? true : current && p.id in current ? current[p.id] : p.default;
      var tag = p.required || !p.choosable ? t.always_active : p.gpc_locked ? t.gpc_honoured : null;
      list.appendChild(el("li", {}, [
        el("input", { type: "checkbox", role: "switch", id: id, "data-purpose": p.id, checked: !!on,
          disabled: fixed, "aria-describedby": tag ? id + "-tag" : null }),
        el("label", { "for": id, text: p.name }),
        tag ? el("span", { "class": "cy-tag", id: id + "-tag", text: tag }) : null,
        p.description ? el("details", {}, [el("summary", { text: t.details }), el("p", { text: p.description })]) : null
      ]));
    });
    var status = el("p", { role: "status", "aria-live": "polite", "class": "cy-tag" });
    function btn(label, all) {
      var b = el("button", { type: "button", "class": "cy-btn", text: label });
      b.addEventListener("click", function () { choose(all, status); });
      return b;
    }
    var links = el("p", { "class": "cy-links" }, [el("a", { href: c.preferences_url, text: t.preferences })]);
    if (c.privacy_url) {
      links.appendChild(d.createTextNode(" · "));
      links.appendChild(el("a", { href: c.privacy_url, text: t.privacy_policy }));
    }
    return el("section", { id: "consentry-banner", role: "dialog", "aria-modal": "false",
      "aria-labelledby": "cy-title", "aria-describedby": "cy-body", "data-variant": c.variant }, [
      el("h2", { id: "cy-title", text: c.title }),
      el("p", { id: "cy-body", text: c.body }),
      c.gpc ? el("p", { "class": "cy-gpc", id: "cy-gpc" }, [el("strong", { text: t.gpc_honoured + ". " }), d.createTextNode(t.gpc_note)]) : null,
      list,
      el("div", { "class": "cy-row" }, [btn(t.accept_all, true), btn(t.reject_all, false), btn(t.save, null)]),
      status, links
    ]);
  }

  function show(c, current) {
    if (!d.getElementById("consentry-style")) d.head.appendChild(el("style", { id: "consentry-style", text: CSS }));
    hide();
    root = render(c, current);
    d.body.insertBefore(root, d.body.firstChild);
    shown = true;
    if (reopen) reopen.hidden = true;
  }

  function hide() {
    if (root && root.parentNode) root.parentNode.removeChild(root);
    root = null;
    shown = false;
  }

  function choose(all, status) {
    var choices = {};
    config.purposes.forEach(function (p) {
      if (!p.choosable) return;
      var box = d.getElementById("cy-p-" + p.id);
      choices[p.id] = p.gpc_locked ? false : all === null ? !!(box && box.checked) : all;
    });
    status.textContent = "";
    fetch(api + "/v1/banner/" + encodeURIComponent(site) + "/consent", {
      method: "POST", credentials: "include", headers: { "content-type": "application/json" },
      body: JSON.stringify({ choices: choices, gpc: gpcOn, jurisdiction: ds.jurisdiction || null,
        config_version: config.version })
    }).then(function (r) { if (!r.ok) throw new Error("consent " + r.status); return r.json(); })
      .then(function (res) { hide(); apply(res.consent, "useractioncomplete"); })
      .catch(function () { status.textContent = config.texts.error; });
  }

  function showReopen() {
    if (!d.body) return d.addEventListener("DOMContentLoaded", showReopen);
    if (!reopen) {
      reopen = el("button", { type: "button", id: "consentry-reopen" });
      reopen.addEventListener("click", open);
      d.body.appendChild(reopen);
    }
    var t = (config && config.texts) || {};
    reopen.textContent = (t.manage || "Privacy choices") + (state && state.gpc ? " · " + (t.gpc_honoured || "Opt-Out Request Honored") : "");
    reopen.hidden = shown;
  }

  function open() {
    return loadConfig().then(function (c) {
      show(c, state && state.p);
      tcfStatus = tcfStatus || "cmpuishown";
      notify("cmpuishown");
    });
  }

  function start() {
    var saved = readCookie();
    if (saved) return apply(saved, "tcloaded");   // no request: the cookie holds the signed choice
    loadConfig().then(function (c) {
      state = c.state;
      var granted = TYPES.some(function (t) { return c.state.cm[t] === "granted"; });
      if (granted) gtag("consent", "update", c.state.cm);
      if (!d.body) return d.addEventListener("DOMContentLoaded", function () { show(c); tcfStatus = "cmpuishown"; notify("cmpuishown"); });
      show(c);
      tcfStatus = "cmpuishown";
      notify("cmpuishown");
    }).catch(function () { /* no config: tags stay denied (fail closed) */ });
  }

  w.Consentry = { open: open, state: function () { return state; }, site: site };
  start();
})(window, document);
