"""Which actions a person can take on a purpose, by its legal basis.

Recording an action the basis does not allow would put a meaningless fact in a permanent log, so
the write path refuses it with a message that says what the person can do instead.
"""

from __future__ import annotations

from consentry.domain.errors import ValidationError
from consentry.domain.events import Action
from consentry.domain.purposes import LegalBasis, Purpose

_ALLOWED: dict[LegalBasis, frozenset[Action]] = {
    LegalBasis.CONSENT: frozenset(
        {Action.GIVEN, Action.REFUSED, Action.WITHDRAWN, Action.OPTED_OUT, Action.OPTED_IN}
    ),
    # Art. 21: the person objects; `given` records that they lift an earlier objection.
    LegalBasis.LEGITIMATE_INTEREST: frozenset({Action.OBJECTED, Action.GIVEN}),
    # Contract and legal obligation do not rest on the person's will: nothing to withdraw.
    LegalBasis.CONTRACT: frozenset({Action.GIVEN}),
    LegalBasis.LEGAL_OBLIGATION: frozenset({Action.GIVEN}),
}

_NEGATIVE = frozenset({Action.REFUSED, Action.WITHDRAWN, Action.OBJECTED, Action.OPTED_OUT})


def validate_action(purpose: Purpose, action: Action) -> None:
    """Raise ValidationError when `action` makes no sense for `purpose`."""
    if purpose.required and action in _NEGATIVE:
        raise ValidationError(
            f"purpose {purpose.id!r} is required (strictly necessary) and cannot be {action.value};"
            " it is not based on a choice the person can revoke"
        )
    allowed = _ALLOWED[purpose.legal_basis]
    if action in allowed:
        if action in (Action.OPTED_OUT, Action.OPTED_IN) and purpose.opt_out_category is None:
            raise ValidationError(
                f"purpose {purpose.id!r} has no opt_out_category (sale, sharing or"
                f" targeted_advertising), so {action.value} does not apply; use given, refused or"
                " withdrawn"
            )
        return
    basis = purpose.legal_basis.value
    if purpose.legal_basis in (LegalBasis.CONTRACT, LegalBasis.LEGAL_OBLIGATION):
        raise ValidationError(
            f"purpose {purpose.id!r} is based on {basis}, which the person cannot {action.value}:"
            " it does not rest on consent. Only 'given' (an acknowledgement) can be recorded"
        )
    if purpose.legal_basis is LegalBasis.LEGITIMATE_INTEREST:
        raise ValidationError(
            f"purpose {purpose.id!r} is based on legitimate interest: record 'objected' (Art. 21)"
            f" or 'given' to lift an objection, not {action.value!r}"
        )
    raise ValidationError(
        f"purpose {purpose.id!r} is based on consent: record given, refused or withdrawn, not"
        f" {action.value!r}"
    )
