"""Whatever the recorder accepts, both backends store and read back exactly; whatever they could
not store, the recorder refuses first, with a ValidationError (issue 10 #8: PostgreSQL answered
500 on NUL, which SQLite stored). Property-based, on each backend."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consentry.domain.errors import ValidationError
from consentry.domain.events import Action, Source
from consentry.domain.purposes import LegalBasis, Purpose
from consentry.recording.service import ConsentRequest, EventRequest
from consentry.services import Services

# Unicode with the awkward parts over-represented (NUL, controls, a lone surrogate, format
# characters, a decomposed accent), and plain identifiers, so that both answers are exercised.
SPECIAL = ["\x00", "\x1b", "\x7f", "\x85", "\ud800", "\u200d", "\u202e", " ", "e\u0301"]
awkward = st.one_of(
    st.lists(
        st.one_of(
            st.sampled_from(SPECIAL),
            st.characters(codec="utf-8"),
            st.characters(codec="ascii"),
        ),
        min_size=1,
        max_size=30,
    ).map("".join),
    st.text(st.sampled_from("abcXYZ019-_.@ \u00e9\u5c71"), min_size=1, max_size=20)
    .map(str.strip)
    .filter(bool),
)
on_each_backend = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(subject=awkward, user_agent=awkward, raw_signal=awkward)
def test_the_recorder_stores_exactly_what_it_accepts(
    services: Services, subject: str, user_agent: str, raw_signal: str
) -> None:
    if not services.catalog.purposes("default"):
        services.recorder.add_purpose("default", Purpose("email", "Email", LegalBasis.CONSENT))
    request = ConsentRequest(
        subject=subject,
        source=Source.API,
        events=[EventRequest("email", Action.GIVEN)],
        user_agent=user_agent,
        raw_signal=raw_signal,
    )
    head = services.store.head()
    try:
        result = services.recorder.record("default", request)
    except ValidationError:
        assert services.store.head() == head
        return
    (event,) = services.store.subject_history("default", subject)[-1:]
    assert event == result.events[0]
    assert (event.subject, event.evidence.raw_signal) == (subject, raw_signal)
    assert event.evidence.user_agent == user_agent[:512]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=awkward, description=awkward)
def test_the_catalogue_stores_exactly_what_it_accepts(
    services: Services, name: str, description: str
) -> None:
    pid = f"p{len(services.store.get_purposes('default'))}"
    try:
        purpose = Purpose(pid, name, LegalBasis.CONSENT, description)
        services.recorder.add_purpose("default", purpose)
    except ValidationError:
        assert all(p.id != pid for p in services.store.get_purposes("default"))
        return
    assert purpose in services.store.get_purposes("default")
