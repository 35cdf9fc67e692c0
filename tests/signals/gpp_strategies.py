"""Hypothesis strategies for every GPP section model, derived from the sections' own field kinds
(so a new section in the registry is covered without a new strategy)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from consentry.signals import gpp, tcf
from consentry.signals.gpp import fields as f

_IDS = st.frozensets(st.integers(1, 3000), max_size=40) | st.frozensets(
    st.integers(1, 120), max_size=120
)
_WHEN = st.integers(0, 10**10).map(
    lambda ds: datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=100 * ds)
)


def _kind(kind: f.Kind, values: dict[str, Any]) -> st.SearchStrategy[Any]:
    if isinstance(kind, f.Int):
        allowed = kind.allowed or range(1 << kind.width)
        return st.integers(allowed.start, allowed.stop - 1)
    if isinstance(kind, f.IntList):
        return st.lists(st.integers(0, 2), min_size=kind.length, max_size=kind.length)
    if isinstance(kind, f.Bool):
        return st.booleans()
    if isinstance(kind, f.Datetime):
        return _WHEN
    if isinstance(kind, f.Letters):
        return st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=2, max_size=2)
    if isinstance(kind, f.Bitfield):
        return st.lists(st.booleans(), min_size=kind.length, max_size=kind.length)
    if isinstance(kind, f.FlexBitfield):
        n = values[kind.count_field]
        return st.lists(st.booleans(), min_size=n, max_size=n)
    if isinstance(kind, f.OptimizedRange):
        return _IDS.map(sorted)
    if isinstance(kind, f.RangeArray):
        entry = st.builds(f.RangeEntry, st.integers(0, 63), st.integers(0, 3), _IDS.map(tuple))
        return st.lists(entry, max_size=4)
    raise AssertionError(f"no strategy for {kind!r}")


@st.composite
def section_models(draw: st.DrawFn, cls: type[gpp.Section]) -> gpp.Section:
    """A valid (strict) model of ``cls``, any version; optional sub-sections on or off."""
    version = draw(st.sampled_from(sorted(cls.VERSIONS)))
    values: dict[str, Any] = {cls.VERSION_FIELD: version}
    kinds = cls.kinds(version)
    for name, kind in kinds.items():
        if name != cls.VERSION_FIELD:
            values[name] = draw(_kind(kind, values))
    sub = getattr(cls, "SUBSECTION", None)
    if sub is not None and not values[sub.flag]:
        values[sub.field] = kinds[sub.field].default
    return cls(**values)


usp_models = st.builds(
    gpp.UspV1,
    Notice=st.sampled_from("YN-"),
    OptOutSale=st.sampled_from("YN-"),
    LspaCovered=st.sampled_from("YN-"),
)


@st.composite
def tc_models(draw: st.DrawFn) -> tcf.TCModel:
    """A TCF 2.2/2.3-valid model (strict encode accepts it)."""
    when = draw(_WHEN)
    n = draw(st.integers(0, 8))
    return tcf.TCModel(
        created=when,
        last_updated=when,
        cmp_id=draw(st.integers(2, 4095)),
        cmp_version=draw(st.integers(0, 4095)),
        vendor_list_version=draw(st.integers(1, 4095)),
        purpose_consents=draw(st.frozensets(st.integers(1, 24))),
        purpose_legitimate_interests=draw(st.frozensets(st.sampled_from([2, 7, 8, 9, 10, 11]))),
        special_feature_opt_ins=draw(st.frozensets(st.integers(1, 12))),
        vendor_consents=draw(_IDS),
        vendor_legitimate_interests=draw(_IDS),
        vendors_disclosed=draw(_IDS),
        num_custom_purposes=n,
        publisher_custom_consents=draw(st.frozensets(st.integers(1, n))) if n else (),
    )


def models_for(row: gpp.SectionType) -> st.SearchStrategy[Any]:
    if row.model is gpp.UspV1:
        return usp_models
    if row.model is tcf.TCModel:
        return tc_models()
    return section_models(row.model)


@st.composite
def gpp_strings(draw: st.DrawFn) -> gpp.GPPString:
    """Any combination of supported sections (at least one), plus unknown ones."""
    rows = draw(st.lists(st.sampled_from(gpp.SECTIONS), min_size=1, max_size=4, unique=True))
    unknown = draw(
        st.dictionaries(
            st.integers(28, 200),
            st.text(alphabet="ABCDEFabcdef0123456789-_.", min_size=1, max_size=12),
            max_size=2,
        )
    )
    return gpp.GPPString(
        **{row.name: draw(models_for(row)) for row in rows},
        unknown_sections=tuple(unknown.items()),
    )
