"""Purposes (list, create) and notices (versions; a new version previewed with its diff and who
must consent again, then published). Changes go through the recorder, as the API's do."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Query, Request, Response

from consentry.api.admin.console import NAV, NavItem, admin_router, redirect, render
from consentry.api.admin.session import Editor, Principal, Submission, Viewer
from consentry.domain.errors import ConflictError, DomainError, ValidationError
from consentry.domain.notices import DEFAULT_GRACE_DAYS, Notice
from consentry.domain.purposes import LegalBasis, OptOutCategory, Purpose
from consentry.services import Services
from consentry.storage.reports import Reports
from consentry.ui.admin.diff import TextDiff, diff_text

router = admin_router()
NAV.add(NavItem("purposes", "Purposes", "/admin/purposes", "Catalogue", 10))
NAV.add(NavItem("notices", "Notices", "/admin/notices", "Catalogue", 11))
NAV.add(
    NavItem(
        "channels",
        "Channels",
        "/admin/channels",
        "Catalogue",
        12,
        planned="the channels people decide through (issue 13)",
    )
)

BASIS_TEXT = {
    LegalBasis.CONSENT: "Consent",
    LegalBasis.LEGITIMATE_INTEREST: "Legitimate interest",
    LegalBasis.CONTRACT: "Contract",
    LegalBasis.LEGAL_OBLIGATION: "Legal obligation",
}
OPT_OUT_TEXT = {
    OptOutCategory.SALE: "Sale (US state laws)",
    OptOutCategory.SHARING: "Sharing (US state laws)",
    OptOutCategory.TARGETED_ADVERTISING: "Targeted advertising (US state laws)",
}


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


# Purposes ---------------------------------------------------------------------------------------


def _purposes_page(
    request: Request,
    who: Principal,
    *,
    error: str | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    purposes = sorted(_services(request).catalog.purposes(who.tenant).values(), key=lambda p: p.id)
    return render(
        request,
        who,
        "admin/purposes.html",
        title="Purposes",
        purposes=purposes,
        basis_text=BASIS_TEXT,
        opt_out_text=OPT_OUT_TEXT,
        error=error,
        values=values or {},
        status=status,
    )


@router.get("/admin/purposes")
def purposes(request: Request, who: Viewer) -> Response:
    return _purposes_page(request, who)


@router.post("/admin/purposes")
def create_purpose(request: Request, form: Editor) -> Response:
    values = {
        k: form.get(k)
        for k in ("id", "name", "legal_basis", "description", "lifetime_days", "opt_out_category")
    }
    values["required"] = "on" if form.flag("required") else ""
    try:
        purpose = _purpose_of(form)
        created = _services(request).recorder.add_purpose(form.who.tenant, purpose)
    except (ValidationError, ConflictError) as exc:
        return _purposes_page(request, form.who, error=str(exc), values=values, status=422)
    message = f"Purpose {purpose.id!r} created." if created else f"{purpose.id!r} already exists."
    return redirect(request, form.who, "/admin/purposes", message)


def _purpose_of(form: Submission) -> Purpose:
    try:
        basis = LegalBasis(form.get("legal_basis"))
    except ValueError as exc:
        raise ValidationError("choose a legal basis") from exc
    lifetime = form.get("lifetime_days")
    category = form.get("opt_out_category")
    try:
        opt_out = OptOutCategory(category) if category else None
        days = int(lifetime) if lifetime else None
    except ValueError as exc:
        raise ValidationError("lifetime must be a whole number of days") from exc
    if len(form.get("name")) > 200 or len(form.get("description")) > 2000:
        raise ValidationError("the name is limited to 200 characters, the description to 2000")
    return Purpose(
        id=form.get("id"),
        name=form.get("name"),
        legal_basis=basis,
        description=form.get("description"),
        required=form.flag("required"),
        lifetime_days=days,
        opt_out_category=opt_out,
    )


# Notices ----------------------------------------------------------------------------------------


def _versions(request: Request, tenant: str) -> dict[str, list[Notice]]:
    grouped: dict[str, list[Notice]] = {}
    for notice in _services(request).store.get_notices(tenant):
        grouped.setdefault(notice.id, []).append(notice)
    for versions in grouped.values():
        versions.sort(key=lambda n: n.version, reverse=True)
    return dict(sorted(grouped.items()))


@router.get("/admin/notices")
def notices(request: Request, who: Viewer) -> Response:
    return render(
        request, who, "admin/notices.html", title="Notices", notices=_versions(request, who.tenant)
    )


@dataclass(frozen=True, slots=True)
class Draft:
    """A notice version being written: what the form holds."""

    id: str
    text: str
    purposes: tuple[str, ...]
    material: bool
    grace_days: int
    version: int  # the version it will be published as
    existing: bool  # a new version of a notice that exists

    @classmethod
    def of(cls, form: Submission) -> Draft:
        grace = form.get("grace_days") or str(DEFAULT_GRACE_DAYS)
        try:
            grace_days = int(grace)
            version = int(form.get("version") or "1")
        except ValueError as exc:
            raise ValidationError("the grace period must be a whole number of days") from exc
        if len(form.get("text")) > 100_000:
            raise ValidationError("the text is limited to 100,000 characters")
        return cls(
            id=form.get("id"),
            text=form.fields.get("text", [""])[0].replace("\r\n", "\n").strip(),
            purposes=tuple(form.all("purposes")),
            material=form.flag("material"),
            grace_days=grace_days,
            version=version,
            existing=form.flag("existing"),
        )

    def notice(self, published_at: datetime) -> Notice:
        return Notice(
            id=self.id,
            version=self.version,
            text=self.text,
            purposes=self.purposes,
            published_at=published_at,
            material=self.material,
            grace_days=self.grace_days,
        )


def _edit_page(
    request: Request, who: Principal, draft: Draft, error: str | None = None, status: int = 200
) -> Response:
    catalog = _services(request).catalog.purposes(who.tenant)
    return render(
        request,
        who,
        "admin/notice_edit.html",
        title=f"New version of {draft.id}" if draft.existing else "New notice",
        draft=draft,
        purposes=sorted(catalog.values(), key=lambda p: p.id),
        error=error,
        status=status,
    )


@router.get("/admin/notices/new")
def new_notice(
    request: Request,
    who: Viewer,
    notice: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    versions = _versions(request, who.tenant).get(notice or "", [])
    if versions:
        latest = versions[0]
        draft = Draft(
            latest.id,
            latest.text,
            latest.purposes,
            False,
            latest.grace_days,
            latest.version + 1,
            True,
        )
    else:
        draft = Draft("", "", (), False, DEFAULT_GRACE_DAYS, 1, False)
    return _edit_page(request, who, draft)


@dataclass(frozen=True, slots=True)
class Impact:
    """Who must consent again, and by when, if a material version is published now."""

    purpose: str
    name: str
    holders: int


@router.post("/admin/notices/new")
def draft_notice(request: Request, form: Editor) -> Response:
    """One form, three steps: `edit` (back to the form), `preview` (diff and impact) and
    `publish`. Nothing is recorded before `publish`."""
    services = _services(request)
    who = form.who
    try:
        draft = Draft.of(form)
    except ValidationError as exc:
        draft = Draft(form.get("id"), form.get("text"), (), False, DEFAULT_GRACE_DAYS, 1, False)
        return _edit_page(request, who, draft, str(exc), 422)
    step = form.get("step")
    if step == "edit":
        return _edit_page(request, who, draft)
    versions = _versions(request, who.tenant).get(draft.id, [])
    latest = versions[0] if versions else None
    expected = latest.version + 1 if latest else 1
    try:
        if draft.version != expected:
            raise ConflictError(
                f"version {expected - 1} of {draft.id!r} was published meanwhile: review it and"
                " write this change again"
            )
        unknown = set(draft.purposes) - set(services.catalog.purposes(who.tenant))
        if unknown:
            raise ValidationError(f"unknown purposes: {', '.join(sorted(unknown))}")
        notice = draft.notice(services.recorder.clock())  # validates the version
        if latest is not None and latest.text == notice.text and latest.purposes == notice.purposes:
            raise ValidationError("nothing changed: this version is the same as the last one")
    except DomainError as exc:
        return _edit_page(request, who, draft, str(exc), 422)
    impact = _impact(request, who, notice) if notice.material else []
    if step != "publish":
        return render(
            request,
            who,
            "admin/notice_preview.html",
            title=f"Review {notice.id} version {notice.version}",
            draft=draft,
            notice=notice,
            previous=latest,
            diff=_diff(latest, notice),
            impact=impact,
        )
    try:
        services.recorder.add_notice(who.tenant, notice)
    except DomainError as exc:
        return _edit_page(request, who, draft, str(exc), 422)
    message = f"Published {notice.id} version {notice.version}."
    if impact:
        people = sum(i.holders for i in impact)
        message += (
            f" {people} current consent(s) must be given again by"
            f" {notice.grace_until:%Y-%m-%d} ({notice.grace_days} days)."
        )
    return redirect(request, who, "/admin/notices", message)


def _diff(previous: Notice | None, notice: Notice) -> TextDiff:
    return diff_text(previous.text if previous else "", notice.text)


def _impact(request: Request, who: Principal, notice: Notice) -> list[Impact]:
    reports: Reports = request.app.state.admin_reports
    names = {p.id: p.name for p in _services(request).catalog.purposes(who.tenant).values()}
    holders = reports.consent_holders(who.tenant, list(notice.purposes))
    return [Impact(p, names.get(p, p), holders.get(p, 0)) for p in notice.purposes]
