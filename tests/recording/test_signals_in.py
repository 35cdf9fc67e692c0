"""Signals in: POST /v1/consents with a tc_string or gpp_string records the events it implies for
the tenant's mapped purposes, with the raw string as evidence; the mapping is set per tenant.

Strings come from the official vectors (tests/signals/vectors, copied from ../shared/specs) or
from our encoder, which reproduces them byte for byte (tests/signals).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from consentry.domain.purposes import LegalBasis, OptOutCategory, Purpose
from consentry.recording import gpp_signals
from consentry.recording.signals_in import SignalMapping, events_from_gpp_string
from consentry.signals import gpp, tcf
from consentry.storage.base import Role
from tests.conftest import ApiClient
from tests.signals.vectors_path import vectors_file

# @iabtechlabtcf/core 1.5.21: consents {1,3,4}, LI {2,7}, special feature 1 (standards.md 1.7).
TC_VECTOR = "CQeEcwAQeEcwAEsACBENCWFoALAAAEIAAAqIAFEBAAIgAAAA.IAFEBAAA.YAAAAAAAAAAA"
# @iabgpp/cmpapi: usnat with sale and targeting opt-out, MSPA not covered, GPC (standards.md 2.4).
USNAT_VECTOR = "DBABLA~CUQRAAAAAACA.YA"

MAPPING = {
    "purposes": {
        "storage": {"tcf_purposes": [1], "consent_mode": ["ad_storage"]},
        "ads": {"tcf_purposes": [1, 3, 4], "tcf_special_features": [1]},
        "measure": {"tcf_purposes": [1, 7]},
        "market_research": {"tcf_purposes": [2, 7]},
        "sale": {"us_opt_out": ["sale"]},
        "targeting": {},
        "newsletter": {"us_opt_out": ["sharing"]},
        "necessary": {"consent_mode": ["security_storage"]},
    }
}


def setup_tenant(api: ApiClient) -> None:
    api.purpose("storage")
    api.purpose("ads")
    api.purpose("measure")
    api.purpose("market_research", "legitimate_interest")
    api.purpose("sale", opt_out_category="sale")
    api.purpose("targeting", opt_out_category="targeted_advertising")
    api.purpose("newsletter")
    api.purpose("necessary", required=True)
    r = api.client.put("/v1/mappings", json=MAPPING)
    assert r.status_code == 200, r.text


def post(api: ApiClient, subject: str, **body: Any) -> Any:
    return api.client.post("/v1/consents", json={"subject": subject, **body})


def actions(api: ApiClient, subject: str) -> dict[str, tuple[str, str, str | None]]:
    r = api.client.get(f"/v1/subjects/{subject}/history")
    assert r.status_code == 200
    return {e["purpose"]: (e["action"], e["source"], e["raw_signal"]) for e in r.json()["events"]}


def test_mapping_round_trip_and_versions(api: ApiClient) -> None:
    r = api.client.get("/v1/mappings")
    assert r.json() == {"version": 0, "created_at": None, "purposes": {}}
    setup_tenant(api)
    got = api.client.get("/v1/mappings").json()
    assert got["version"] == 1
    assert got["purposes"]["ads"]["tcf_purposes"] == [1, 3, 4]
    assert got["purposes"]["sale"]["us_opt_out"] == ["sale"]
    # The same mapping again is not a new version; a change is.
    assert api.client.put("/v1/mappings", json=MAPPING).json()["version"] == 1
    changed = {"purposes": {**MAPPING["purposes"], "measure": {"tcf_purposes": [7]}}}
    assert api.client.put("/v1/mappings", json=changed).json()["version"] == 2


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"purposes": {"ghost": {"tcf_purposes": [1]}}}, "no such purpose"),
        ({"purposes": {"market_research": {"tcf_purposes": [3]}}}, "legitimate interest"),
        ({"purposes": {"necessary": {"tcf_purposes": [1]}}}, "cannot be refused"),
        ({"purposes": {"ads": {"tcf_purposes": [25]}}}, "tcf_purposes"),
        ({"purposes": {"ads": {"consent_mode": ["ad_cookies"]}}}, "consent_mode"),
        ({"purposes": {"ads": {"us_opt_out": ["everything"]}}}, "us_opt_out"),
        ({"purposes": {"ads": {"tcf": [1]}}}, "tcf"),
    ],
)
def test_bad_mappings_are_refused_with_the_reason(
    api: ApiClient, mapping: dict[str, Any], message: str
) -> None:
    setup_tenant(api)
    r = api.client.put("/v1/mappings", json=mapping)
    assert r.status_code == 422, r.text
    assert message in r.text
    assert api.client.get("/v1/mappings").json()["version"] == 1


def test_tc_string_records_the_implied_events_with_the_string_as_evidence(
    api: ApiClient,
) -> None:
    setup_tenant(api)
    r = post(api, "u1", tc_string=TC_VECTOR, jurisdiction="FR")
    assert r.status_code == 201, r.text
    got = actions(api, "u1")
    # consents {1,3,4} + special feature 1: storage (1) and ads (1,3,4,sf1) given; measure
    # needs 7 by consent: refused; market research rests on LI for {2,7}: set, nothing to record.
    assert got == {
        "storage": ("given", "tcf", TC_VECTOR),
        "ads": ("given", "tcf", TC_VECTOR),
        "measure": ("refused", "tcf", TC_VECTOR),
    }
    check = api.client.get("/v1/decisions", params={"subject": "u1", "purpose": "ads"}).json()
    assert check["permitted"] is True and check["reason"] == "granted"


def test_a_later_string_withdraws_and_objects(api: ApiClient) -> None:
    setup_tenant(api)
    assert post(api, "u2", tc_string=TC_VECTOR).status_code == 201
    later = tcf.encode(
        tcf.TCModel(
            created=datetime(2026, 3, 1, tzinfo=UTC),
            last_updated=datetime(2026, 3, 1, tzinfo=UTC),
            cmp_id=300,
            cmp_version=2,
            vendor_list_version=150,
            purpose_consents=(1,),
            purpose_legitimate_interests=(2,),
        )
    )
    assert post(api, "u2", tc_string=later).status_code == 201
    r = api.client.get("/v1/subjects/u2/history").json()["events"]
    last = {e["purpose"]: e["action"] for e in r}
    assert last["ads"] == "withdrawn"  # given before, so withdrawn rather than refused
    assert last["storage"] == "given"
    assert last["market_research"] == "objected"  # LI bit for 7 cleared


def test_gpp_usnat_records_opt_outs(api: ApiClient) -> None:
    setup_tenant(api)
    r = post(api, "u3", gpp_string=USNAT_VECTOR, jurisdiction="US-CA")
    assert r.status_code == 201, r.text
    got = actions(api, "u3")
    # Sale and targeting opted out, GPC set: every US-mapped purpose is opted out; newsletter
    # has no opt-out category, so its opt-out is a refusal.
    assert got == {
        "sale": ("opted_out", "gpp", USNAT_VECTOR),
        "targeting": ("opted_out", "gpp", USNAT_VECTOR),
        "newsletter": ("refused", "gpp", USNAT_VECTOR),
    }


def test_gpp_did_not_opt_out_opts_in_and_tcfeuv2_follows_tcf(api: ApiClient) -> None:
    setup_tenant(api)
    section = gpp.UsNat(
        SaleOptOutNotice=1, SaleOptOut=2, SharingOptOutNotice=1, SharingOptOut=2,
        TargetedAdvertisingOptOutNotice=1, TargetedAdvertisingOptOut=2, MspaCoveredTransaction=2,
    )  # fmt: skip
    text = gpp.encode(gpp.GPPString(usnat=section, tcfeuv2=tcf.decode(TC_VECTOR)))
    assert post(api, "u4", gpp_string=text).status_code == 201
    got = {p: a for p, (a, _, _) in actions(api, "u4").items()}
    assert got == {
        "sale": "opted_in",
        "targeting": "opted_in",
        "storage": "given",
        "ads": "given",
        "measure": "refused",
    }  # newsletter: not opting out is not consent, nothing recorded


def test_every_official_usnat_vector_is_accepted(api: ApiClient) -> None:
    setup_tenant(api)
    vectors = json.loads(vectors_file("gpp_usnat.json").read_text())
    for i, vector in enumerate(vectors):
        usnat = vector["expected"]["usnat"]
        r = post(api, f"v{i}", gpp_string=vector["gpp_string"])
        if r.status_code == 422:  # only when no category says anything
            values = {usnat["SaleOptOut"], usnat["TargetedAdvertisingOptOut"]}
            assert values <= {0} and not usnat.get("Gpc"), (vector, r.text)
            continue
        assert r.status_code == 201, (vector, r.text)
        got = actions(api, f"v{i}")
        sale = {1: "opted_out", 2: "opted_in"}.get(usnat["SaleOptOut"])
        if usnat.get("Gpc"):
            sale = "opted_out"
        if sale:
            assert got["sale"][0] == sale, vector


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"tc_string": "not a tc string"}, 422, "tc_string is not a valid"),
        ({"tc_string": TC_VECTOR.split(".")[0]}, 422, "Disclosed Vendors"),
        ({"gpp_string": "DBABM"}, 422, "gpp_string is not a valid"),
        ({"tc_string": TC_VECTOR, "gpp_string": USNAT_VECTOR}, 422, "exactly one"),
        ({"tc_string": TC_VECTOR, "events": [{"purpose": "ads", "action": "given"}]}, 422, "one"),
        ({}, 422, "exactly one of events, tc_string or gpp_string"),
    ],
)
def test_bad_signal_requests(
    api: ApiClient, body: dict[str, Any], status: int, message: str
) -> None:
    setup_tenant(api)
    r = post(api, "u5", **body)
    assert r.status_code == status, r.text
    assert message in r.text
    assert r.json()["error"]["code"] == "validation_error"


def test_without_a_mapping_the_error_says_what_to_do(api: ApiClient) -> None:
    api.purpose("ads")
    r = post(api, "u6", tc_string=TC_VECTOR)
    assert r.status_code == 422
    assert "PUT /v1/mappings" in r.text


def test_mapping_needs_catalog_scopes_and_is_per_tenant(api: ApiClient) -> None:
    setup_tenant(api)
    collector = api.key_for(Role.COLLECTOR)
    assert api.client.put("/v1/mappings", json=MAPPING, headers=collector).status_code == 403
    assert api.client.get("/v1/mappings", headers=collector).status_code == 200
    other = api.key_for(Role.ADMIN, tenant="other")
    assert api.client.get("/v1/mappings", headers=other).json()["version"] == 0
    r = api.client.post(
        "/v1/consents", json={"subject": "x", "tc_string": TC_VECTOR}, headers=collector
    )
    assert r.status_code == 201  # collectors record strings with the tenant's mapping


# --------------------------------------------------------------------------- every GPP section

_PURPOSES = {
    "sale": Purpose("sale", "Sale", LegalBasis.CONSENT, opt_out_category=OptOutCategory.SALE),
    "ads": Purpose("ads", "Ads", LegalBasis.CONSENT),
    "sensitive": Purpose("sensitive", "Sensitive", LegalBasis.CONSENT),
    "kids": Purpose("kids", "Kids", LegalBasis.CONSENT),
}
_MAPPING = SignalMapping.from_dict(
    {
        "purposes": {
            "ads": {"us_opt_out": ["targeted_advertising"]},
            "sensitive": {"us_opt_out": ["sensitive_data"]},
            "kids": {"us_opt_out": ["known_child"]},
        }
    },
    version=1,
)


def _one_of_each(cls: type[gpp.UsSection], value: int) -> gpp.UsSection:
    """A section whose every opt-out / consent field says ``value`` (GPC off)."""
    values: dict[str, Any] = {"MspaCoveredTransaction": 1}
    for name, kind in cls.kinds(max(cls.VERSIONS)).items():
        if name.endswith("OptOut") or name in ("SensitiveDataProcessing",):
            values[name] = (value,) * kind.length if hasattr(kind, "length") else value
        if name == "KnownChildSensitiveDataConsents":
            values[name] = (value,) * kind.length if hasattr(kind, "length") else value
    return cls(**values)


@pytest.mark.parametrize("cls", gpp.US_SECTIONS, ids=[c.NAME for c in gpp.US_SECTIONS])
def test_every_us_section_maps_its_opt_outs_to_the_purposes(cls: type[gpp.UsSection]) -> None:
    fields = gpp_signals.SECTION_FIELDS[cls.NAME]
    for value, expected in ((1, {"sale": "opted_out"}), (2, {"sale": "opted_in"})):
        text = gpp.encode(gpp.GPPString(**{cls.NAME: _one_of_each(cls, value)}))
        implied = events_from_gpp_string(text, _MAPPING, _PURPOSES, {})
        got = {e.purpose: e.action.value for e in implied.events}
        refused = "refused" if value == 1 else None
        for purpose, signal in (("ads", "targeted_advertising"), ("sensitive", "sensitive_data"),
                                ("kids", "known_child")):  # fmt: skip
            if fields[gpp_signals.UsSignal(signal)] and refused:
                expected = {**expected, purpose: refused}
        assert got == expected, cls.NAME
        assert implied.applied == (cls.NAME,)
        assert implied.jurisdiction == cls.JURISDICTION


def test_section_fields_follow_each_state_law() -> None:
    fields = gpp_signals.SECTION_FIELDS
    assert fields["usca"][gpp_signals.UsSignal.TARGETED_ADVERTISING] == ("SharingOptOut",)
    assert fields["usva"][gpp_signals.UsSignal.SHARING] == ()
    assert fields["usmd"][gpp_signals.UsSignal.SENSITIVE_DATA] == ()
    assert fields["usin"][gpp_signals.UsSignal.SENSITIVE_DATA] == ("SensitiveDataProcessing",)


def test_gpc_of_a_state_section_opts_out_of_sale_but_not_of_sensitive_data() -> None:
    section = gpp.UsCo(MspaCoveredTransaction=1, SensitiveDataProcessing=(2,) * 7, Gpc=True)
    implied = events_from_gpp_string(
        gpp.encode(gpp.GPPString(usco=section)), _MAPPING, _PURPOSES, {}
    )
    assert {e.purpose: e.action.value for e in implied.events} == {
        "sale": "opted_out",
        "ads": "refused",
    }  # sensitive data consented to in every category: not refused, and not consent either


def test_the_state_section_of_the_jurisdiction_applies_else_usnat() -> None:
    both = gpp.GPPString(
        usnat=gpp.UsNat(MspaCoveredTransaction=1, SaleOptOut=2),
        usca=gpp.UsCa(MspaCoveredTransaction=1, SaleOptOut=1),
        ustx=gpp.UsTx(MspaCoveredTransaction=1, SaleOptOut=2),
    )
    text = gpp.encode(both)
    for where, applied, sale in (
        ("US-CA", ("usca",), "opted_out"),
        ("us-tx", ("ustx",), "opted_in"),
        ("US-NY", ("usnat",), "opted_in"),
        (None, ("usnat",), "opted_in"),
    ):
        implied = events_from_gpp_string(text, _MAPPING, _PURPOSES, {}, where)
        assert implied.applied == applied
        assert {e.purpose: e.action.value for e in implied.events}["sale"] == sale
    states = gpp.encode(gpp.GPPString(usca=both.usca, ustx=both.ustx))
    implied = events_from_gpp_string(states, _MAPPING, _PURPOSES, {})
    assert implied.applied == ("usca", "ustx")  # no usnat: every state, the protective answer
    assert implied.jurisdiction is None
    assert {e.purpose: e.action.value for e in implied.events}["sale"] == "opted_out"


def test_tcfcav1_express_or_implied_consent_counts() -> None:
    when = datetime(2026, 1, 1, tzinfo=UTC)
    purposes = {"storage": Purpose("storage", "Storage", LegalBasis.CONSENT),
                "measure": Purpose("measure", "Measure", LegalBasis.CONSENT),
                "research": Purpose("research", "R", LegalBasis.LEGITIMATE_INTEREST)}  # fmt: skip
    mapping = SignalMapping.from_dict(
        {"purposes": {"storage": {"tcf_purposes": [1]}, "measure": {"tcf_purposes": [1, 8]},
                      "research": {"tcf_purposes": [2]}}}, version=1)  # fmt: skip
    section = gpp.TcfCaV1(
        Created=when, LastUpdated=when, PurposesExpressConsent=[True], PurposesImpliedConsent=[]
    )
    implied = events_from_gpp_string(
        gpp.encode(gpp.GPPString(tcfcav1=section)), mapping, purposes, {}
    )
    assert {e.purpose: e.action.value for e in implied.events} == {
        "storage": "given",
        "measure": "refused",
    }  # no legitimate-interest signal in TCF Canada: research is left alone


def test_gpp_state_section_through_the_api_keeps_the_section_as_evidence(
    api: ApiClient,
) -> None:
    setup_tenant(api)
    section = gpp.UsCa(MspaCoveredTransaction=1, SaleOptOut=1, SharingOptOut=2, Gpc=False)
    text = gpp.encode(gpp.GPPString(usca=section))
    r = post(api, "ca1", gpp_string=text)
    assert r.status_code == 201, r.text
    assert r.json()["signal"] == {
        "sections": ["usca"],
        "applied_us_sections": ["usca"],
        "unknown_sections": [],
    }
    events = api.client.get("/v1/subjects/ca1/history").json()["events"]
    got = {e["purpose"]: (e["action"], e["raw_signal"], e["jurisdiction"]) for e in events}
    # California has no targeted-advertising field: its sharing opt-out answers for it. The
    # newsletter (consent, mapped to sharing) did not opt out: not consent, nothing recorded.
    assert got == {
        "sale": ("opted_out", text, "US-CA"),
        "targeting": ("opted_in", text, "US-CA"),
    }


def test_an_unknown_section_is_reported_and_the_known_ones_recorded(api: ApiClient) -> None:
    setup_tenant(api)
    known = gpp.decode(USNAT_VECTOR)
    text = gpp.encode(gpp.GPPString(usnat=known.usnat, unknown_sections=((99, "BVVVVVVV.QA"),)))
    r = post(api, "unk1", gpp_string=text)
    assert r.status_code == 201, r.text
    assert r.json()["signal"]["unknown_sections"] == [99]
    assert r.json()["signal"]["sections"] == ["usnat", "99"]
    assert actions(api, "unk1")["sale"] == ("opted_out", "gpp", text)
    only_unknown = gpp.encode(gpp.GPPString(unknown_sections=((99, "BVVVVVVV.QA"),)))
    r = post(api, "unk2", gpp_string=only_unknown)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "validation_error"
    assert "section ids [99] are not supported" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    "text",
    [
        "DBABLA~CUQRAA",  # usnat cut short
        "DBABzA~BVVVVVVV",  # header cut short
        "DBACNY~BAAA",  # the header lists two sections, one follows
        "DBABLA~CUQRAAAA%ACA.YA",  # not base64url
        "DBABjw~B~1YNN",  # tcfcav1 too short
        "DBABMA~CQujIwAQ",  # tcfeuv2 too short
    ],
)
def test_malformed_gpp_strings_are_a_422_in_the_error_shape(api: ApiClient, text: str) -> None:
    setup_tenant(api)
    r = post(api, "bad", gpp_string=text)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "validation_error"
    assert error["message"].startswith("gpp_string is not a valid GPP string")
    assert api.client.get("/v1/subjects/bad/history").json()["events"] == []
