"""The core commands: serve, migrate, tenants, keys, purposes, notices, record, check, history.

Every command works on the database of CONSENTRY_DATABASE_URL (or --database-url), through the
same services as the API, so a consent recorded here is validated exactly as one sent over HTTP.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from consentry.bootstrap import DEFAULT_TENANT, prepare
from consentry.cli.exits import CliError, ConsentryGroup, ExitCode, fail
from consentry.config import Settings
from consentry.domain.decide import Signals
from consentry.domain.errors import DomainError
from consentry.domain.events import Action, Source, format_time
from consentry.domain.inputs import parse_timestamp
from consentry.domain.notices import DEFAULT_GRACE_DAYS, Notice
from consentry.domain.purposes import LegalBasis, OptOutCategory, Purpose
from consentry.keys import create_key, revoke_key, rotate_key
from consentry.recording.service import ConsentRequest, EventRequest
from consentry.serialize import decision_to_dict, key_to_dict, purpose_to_dict
from consentry.services import Services
from consentry.storage import open_store
from consentry.storage.base import Role

app = typer.Typer(
    cls=ConsentryGroup,
    help="Consentry: the system of record for consent.\n\nEvery command uses the database of"
    " CONSENTRY_DATABASE_URL (default sqlite:///consentry.db) unless --database-url is given.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
keys_app = typer.Typer(
    help="Create, list, revoke and rotate API keys; signing keys.", no_args_is_help=True
)
purposes_app = typer.Typer(help="Declare and list purposes.", no_args_is_help=True)
notices_app = typer.Typer(help="Publish and show notice versions.", no_args_is_help=True)
tenants_app = typer.Typer(help="Create tenants.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(purposes_app, name="purposes")
app.add_typer(notices_app, name="notices")
app.add_typer(tenants_app, name="tenants")

out = Console()
err = Console(stderr=True)

DatabaseUrl = Annotated[
    str | None,
    typer.Option("--database-url", help="Overrides CONSENTRY_DATABASE_URL.", show_default=False),
]
Tenant = Annotated[str, typer.Option("--tenant", "-t", help="The tenant to act for.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _settings(database_url: str | None, **overrides: Any) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    if database_url:
        values["database_url"] = database_url
    return Settings(**values)


def _fail(message: str, code: ExitCode = ExitCode.REQUEST) -> CliError:
    """`raise _fail(...)`: one line on stderr and `code` (cli/exits.py prints it)."""
    return fail(message, code)


@contextmanager
def _services(database_url: str | None, *, tenant: str | None = None) -> Iterator[Services]:
    """Services on an existing, migrated database (never creates one); with `tenant`, that
    tenant must exist. Failures are classified once, by ConsentryGroup (cli/exits.py)."""
    settings = _settings(database_url)
    services = Services.build(settings, open_store(settings.database_url, create=False))
    try:
        services.store.require_current_schema()
        if tenant is not None:
            require_tenant(services, tenant)
        yield services
    finally:
        services.close()


def require_tenant(services: Services, tenant: str) -> None:
    if not services.store.tenant_exists(tenant):
        raise _fail(
            f"tenant {tenant!r} does not exist (create it: consentry tenants create {tenant})"
        )


def check_address(host: str, port: int) -> None:
    """Fail unless `serve` can listen on host:port, before anything is created or printed."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise _fail(
            f"cannot listen on {host}:{port}: {exc.strerror}", ExitCode.ADDRESS_UNAVAILABLE
        ) from exc
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind(address)
        except OSError as exc:
            raise _fail(
                f"cannot listen on {host}:{port}: {exc.strerror}", ExitCode.ADDRESS_UNAVAILABLE
            ) from exc


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


@app.command()
def serve(
    database_url: DatabaseUrl = None,
    host: Annotated[str | None, typer.Option(help="Listen address [default: 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port [default: 8000]")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes [default: 1]")] = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="Serve the demo site at /demo, on its own tenant `demo`.")
    ] = False,
) -> None:
    """Run the HTTP API.

    On a new, empty database it creates the schema and prints an admin key for the `default`
    tenant, once. On an older or newer schema it refuses to start: run `consentry migrate`.

    Example: consentry serve --port 8000
    """
    import uvicorn

    from consentry.api.app import uvicorn_options

    settings = _settings(
        database_url, host=host, port=port, workers=workers, demo=True if demo else None
    )
    check_address(settings.host, settings.port)
    # Consentry's access log (no subject, no token, no query string) instead of uvicorn's.
    server_options = uvicorn_options(settings)
    services = Services.build(settings)
    try:
        services.keyring.signing_key(DEFAULT_TENANT)  # an unusable keys folder fails here, first
        prepared = prepare(services.store, create_if_empty=True)
    except BaseException:
        services.close()
        raise
    if prepared.created_schema:
        out.print(f"Created the Consentry schema in {settings.database_url}")
    if prepared.admin_key is not None:
        out.print(
            "\n[bold]An admin API key for the `default` tenant (shown only this once):[/bold]\n"
        )
        out.print(prepared.admin_key.key, soft_wrap=True, highlight=False)
        out.print("\nUse it as:  Authorization: Bearer <key>\n")
    site = ", a demo site at /demo" if settings.demo else ""
    out.print(f"Consentry on http://{settings.host}:{settings.port}  (API docs at /docs{site})")
    from consentry.cli.ledger import start_integrator

    start_integrator(settings, services)  # the ledger's integrator thread (docs/ledger.md)
    from consentry.cli.propagation import start_relay

    relay = start_relay(settings, services)  # the outbox relay thread, with Kafka (docs/events.md)
    if settings.workers > 1:
        services.close()
        os.environ["CONSENTRY_DATABASE_URL"] = settings.database_url
        if settings.demo:
            os.environ["CONSENTRY_DEMO"] = "true"
        uvicorn.run(
            "consentry.api.app:factory",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_level=settings.log_level,
            **server_options,
        )
        return
    from consentry.api.app import create_app, served

    api = create_app(settings, services)
    if relay is not None:
        api.state.metrics.registry.register(relay.metrics.registry)  # its lag on /metrics
    uvicorn.run(
        served(api),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        **server_options,
    )


@app.command()
def migrate(database_url: DatabaseUrl = None) -> None:
    """Create or upgrade the database schema, and the `default` tenant.

    Example: CONSENTRY_DATABASE_URL=postgresql://db/consentry consentry migrate
    """
    settings = _settings(database_url)
    services = Services.build(settings)
    try:
        applied = services.store.migrate()
        prepared = prepare(services.store, create_if_empty=False)
    finally:
        services.close()
    if applied:
        out.print(f"Applied migrations {', '.join(map(str, applied))}.")
    else:
        out.print("The schema is current; nothing to do.")
    if prepared.admin_key is not None:
        out.print("An admin API key for the `default` tenant (shown only this once):")
        out.print(prepared.admin_key.key, soft_wrap=True, highlight=False)


@tenants_app.command("create")
def tenants_create(
    name: Annotated[str, typer.Argument(help="The tenant's name.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Create a tenant; its data is visible only to its own keys.

    Example: consentry tenants create acme
    """
    with _services(database_url) as services:
        created = services.store.ensure_tenant(name)
    out.print(f"Tenant {name!r} {'created' if created else 'already exists'}.")


@keys_app.command("create")
def keys_create(
    role: Annotated[Role, typer.Option("--role", "-r", help="What the key may do.")],
    tenant: Tenant = DEFAULT_TENANT,
    label: Annotated[str, typer.Option(help="A note to recognise the key by.")] = "",
    database_url: DatabaseUrl = None,
) -> None:
    """Create an API key. The key is printed as the last line, once; only its hash is stored.

    Roles: admin (everything), collector (record, decide), checker (decide), auditor (read
    history and state).

    Example: consentry keys create --tenant default --role checker
    """
    with _services(database_url, tenant=tenant) as services:
        issued = create_key(services.store, tenant, role, label)
    err.print(f"Created a {role.value} key {issued.record.key_id} for tenant {tenant!r}:")
    sys.stdout.write(issued.key + "\n")


@keys_app.command("list")
def keys_list(
    tenant: Tenant = DEFAULT_TENANT, as_json: AsJson = False, database_url: DatabaseUrl = None
) -> None:
    """List a tenant's keys (ids, roles, revocation; the keys themselves are not stored).

    Example: consentry keys list --tenant default
    """
    with _services(database_url, tenant=tenant) as services:
        keys = services.store.list_api_keys(tenant)
    if as_json:
        _print_json([key_to_dict(k) for k in keys])
        return
    table = Table("key id", "role", "label", "created", "revoked")
    for k in keys:
        revoked = format_time(k.revoked_at) if k.revoked_at else ""
        table.add_row(k.key_id, k.role.value, k.label, format_time(k.created_at), revoked)
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key id (from `consentry keys list`).")],
    tenant: Tenant = DEFAULT_TENANT,
    force: Annotated[bool, typer.Option(help="Revoke even the tenant's last admin key.")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Revoke an API key now; every running server refuses it within a second.

    The tenant's last admin key is kept unless --force (you can always create one here).

    Example: consentry keys revoke 3f9a2b7c1d0e --tenant default
    """
    with _services(database_url, tenant=tenant) as services:
        key = revoke_key(services.store, tenant, key_id, revoked_by="cli", force=force)
    assert key.revoked_at is not None
    out.print(f"Key {key_id} ({key.role.value}) is revoked since {format_time(key.revoked_at)}.")


@keys_app.command("rotate")
def keys_rotate(
    key_id: Annotated[str, typer.Argument(help="The key id to replace.")],
    tenant: Tenant = DEFAULT_TENANT,
    grace_seconds: Annotated[
        int,
        typer.Option(min=0, max=30 * 86400, help="How long the old key keeps working."),
    ] = 0,
    database_url: DatabaseUrl = None,
) -> None:
    """Issue a replacement key (same role and label) and revoke the old one, at once or after a
    grace period. The new key is printed as the last line, once.

    Example: consentry keys rotate 3f9a2b7c1d0e --grace-seconds 3600
    """
    with _services(database_url, tenant=tenant) as services:
        rotated = rotate_key(
            services.store,
            tenant,
            key_id,
            grace=timedelta(seconds=grace_seconds),
            revoked_by="cli",
        )
    old, new = rotated.old, rotated.issued.record
    assert old.revoked_at is not None
    err.print(
        f"Created a {new.role.value} key {new.key_id} for tenant {tenant!r}; key {old.key_id}"
        f" is revoked from {format_time(old.revoked_at)}:",
        highlight=False,
        soft_wrap=True,
    )
    sys.stdout.write(rotated.issued.key + "\n")


@purposes_app.command("create")
def purposes_create(
    purpose_id: Annotated[str, typer.Option("--id", help="Stable id, e.g. email_marketing.")],
    name: Annotated[str, typer.Option(help="Human-readable name.")],
    basis: Annotated[LegalBasis, typer.Option("--basis", help="The legal basis.")],
    description: Annotated[str, typer.Option(help="What the data is used for.")] = "",
    required: Annotated[bool, typer.Option(help="Strictly necessary: cannot be refused.")] = False,
    lifetime_days: Annotated[
        int | None, typer.Option(help="A consent older than this expires.")
    ] = None,
    opt_out_category: Annotated[
        OptOutCategory | None, typer.Option(help="US opt-out category (consent purposes).")
    ] = None,
    tenant: Tenant = DEFAULT_TENANT,
    database_url: DatabaseUrl = None,
) -> None:
    """Declare a purpose. Purposes are immutable once created.

    Example: consentry purposes create --id email_marketing --name "Email marketing"
    --basis consent --lifetime-days 395
    """
    with _services(database_url, tenant=tenant) as services:
        purpose = Purpose(
            id=purpose_id,
            name=name,
            legal_basis=basis,
            description=description,
            required=required,
            lifetime_days=lifetime_days,
            opt_out_category=opt_out_category,
        )
        created = services.recorder.add_purpose(tenant, purpose)
    out.print(f"Purpose {purpose_id!r} {'created' if created else 'already exists, unchanged'}.")


@purposes_app.command("list")
def purposes_list(
    tenant: Tenant = DEFAULT_TENANT, as_json: AsJson = False, database_url: DatabaseUrl = None
) -> None:
    """List the tenant's purposes.

    Example: consentry purposes list --json
    """
    with _services(database_url, tenant=tenant) as services:
        purposes = services.store.get_purposes(tenant)
    if as_json:
        _print_json([purpose_to_dict(p) for p in purposes])
        return
    table = Table("id", "name", "basis", "required", "lifetime (days)", "opt-out category")
    for p in purposes:
        table.add_row(
            p.id,
            p.name,
            p.legal_basis.value,
            "yes" if p.required else "",
            str(p.lifetime_days or ""),
            p.opt_out_category.value if p.opt_out_category else "",
        )
    out.print(table)


@notices_app.command("publish")
def notices_publish(
    notice_id: Annotated[str, typer.Option("--id", help="The notice id, e.g. privacy.")],
    version: Annotated[int, typer.Option(help="The new version number.")],
    text_file: Annotated[Path, typer.Option(help="File with the notice text.", exists=True)],
    purpose: Annotated[list[str], typer.Option("--purpose", "-p", help="A purpose covered.")],
    material: Annotated[bool, typer.Option(help="Earlier consents need renewing.")] = False,
    grace_days: Annotated[int, typer.Option(help="Days before re-consent is required.")] = (
        DEFAULT_GRACE_DAYS
    ),
    tenant: Tenant = DEFAULT_TENANT,
    database_url: DatabaseUrl = None,
) -> None:
    """Publish a new version of a notice (append-only).

    Example: consentry notices publish --id privacy --version 2 --text-file privacy.txt
    -p email_marketing --material --grace-days 30
    """
    with _services(database_url, tenant=tenant) as services:
        notice = Notice(
            id=notice_id,
            version=version,
            text=text_file.read_text(encoding="utf-8"),
            purposes=tuple(purpose),
            published_at=datetime.now(UTC),
            material=material,
            grace_days=grace_days,
        )
        created = services.recorder.add_notice(tenant, notice)
    out.print(
        f"Notice {notice_id!r} version {version} {'published' if created else 'already exists'}."
    )


@notices_app.command("show")
def notices_show(
    notice_id: Annotated[str, typer.Argument(help="The notice id.")],
    tenant: Tenant = DEFAULT_TENANT,
    database_url: DatabaseUrl = None,
) -> None:
    """Show every version of a notice, oldest first.

    Example: consentry notices show privacy
    """
    with _services(database_url, tenant=tenant) as services:
        versions = services.store.get_notices(tenant, notice_id)
    if not versions:
        raise _fail(f"notice {notice_id!r} does not exist")
    table = Table("version", "published", "material", "grace days", "purposes", "hash")
    for n in sorted(versions, key=lambda n: n.version):
        table.add_row(
            str(n.version),
            format_time(n.published_at),
            "yes" if n.material else "",
            str(n.grace_days),
            ", ".join(n.purposes),
            n.content_hash[:19] + "…",
        )
    out.print(table)


def _parse_choice(text: str) -> EventRequest:
    purpose, sep, action = text.partition("=")
    if not sep:
        raise typer.BadParameter(f"{text!r}: write PURPOSE=ACTION, e.g. email_marketing=given")
    try:
        return EventRequest(purpose.strip(), Action(action.strip()))
    except ValueError as exc:
        actions = ", ".join(a.value for a in Action)
        raise typer.BadParameter(f"{action!r} is not an action; use one of {actions}") from exc


@app.command()
def record(
    subject: Annotated[str, typer.Option(help="The tenant's pseudonymous key for the person.")],
    choice: Annotated[
        list[str], typer.Option("--choice", "-c", help="PURPOSE=ACTION, repeatable.")
    ],
    source: Annotated[Source, typer.Option(help="The channel.")] = Source.API,
    jurisdiction: Annotated[str | None, typer.Option(help="E.g. DE, US-CA.")] = None,
    notice: Annotated[str | None, typer.Option(help="NOTICE_ID:VERSION shown.")] = None,
    occurred_at: Annotated[str | None, typer.Option(help="RFC 3339; default now.")] = None,
    tenant: Tenant = DEFAULT_TENANT,
    database_url: DatabaseUrl = None,
) -> None:
    """Record a subject's decisions, as POST /v1/consents does.

    Example: consentry record --subject u-123 -c email_marketing=given -c analytics=refused
    --jurisdiction DE --notice privacy:2
    """
    events = [_parse_choice(c) for c in choice]
    notice_id, notice_version = None, None
    if notice:
        notice_id, _, version = notice.partition(":")
        if not version.isdigit():
            raise _fail("--notice takes NOTICE_ID:VERSION, e.g. privacy:2")
        notice_version = int(version)
    when = _parse_time_option("--occurred-at", occurred_at)
    with _services(database_url, tenant=tenant) as services:
        result = services.recorder.record(
            tenant,
            ConsentRequest(
                subject=subject,
                source=source,
                events=events,
                jurisdiction=jurisdiction,
                notice_id=notice_id,
                notice_version=notice_version,
                occurred_at=when,
            ),
        )
    for e in result.events:
        out.print(f"position {e.position}: {e.purpose} {e.action.value}  ({e.event_id})")
    out.print(f"token {result.token}")


def _parse_time_option(name: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_timestamp(name, value)  # RFC 3339, as the API reads it
    except DomainError as exc:
        raise _fail(str(exc)) from exc


@app.command()
def check(
    subject: Annotated[str, typer.Option(help="The subject.")],
    purpose: Annotated[str, typer.Option(help="The purpose.")],
    jurisdiction: Annotated[str | None, typer.Option(help="Overrides the recorded one.")] = None,
    gpc: Annotated[bool, typer.Option(help="As if the request carried Sec-GPC: 1.")] = False,
    tenant: Tenant = DEFAULT_TENANT,
    as_json: AsJson = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Decide whether a subject's data may be processed for a purpose now. Exit 0 if
    permitted, 3 if not.

    Example: consentry check --subject u-123 --purpose email_marketing
    """
    with _services(database_url, tenant=tenant) as services:
        decision = services.decisions.check(
            tenant, subject, purpose, signals=Signals(gpc=gpc, jurisdiction=jurisdiction)
        )
    data = decision_to_dict(decision)
    if as_json:
        _print_json(data)
    else:
        verdict = "[green]permitted[/green]" if decision.permitted else "[red]not permitted[/red]"
        out.print(f"{subject} / {purpose}: {verdict} ({decision.reason.value})")
        out.print(
            f"basis {data['basis']}, position {data['position']}, notice version"
            f" {data['notice_version']}, valid until {data['valid_until']}"
        )
    raise typer.Exit(ExitCode.OK if decision.permitted else ExitCode.NOT_PERMITTED)


@app.command()
def history(
    subject: Annotated[str, typer.Option(help="The subject.")],
    as_of: Annotated[str | None, typer.Option(help="State as of this RFC 3339 time.")] = None,
    known_at: Annotated[str | None, typer.Option(help="...as known at this time.")] = None,
    tenant: Tenant = DEFAULT_TENANT,
    as_json: AsJson = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Show a subject's events, and the state per purpose (now, or as of a past moment).

    Example: consentry history --subject u-123 --as-of 2026-01-01T00:00:00Z
    """
    as_of_t = _parse_time_option("--as-of", as_of)
    known_at_t = _parse_time_option("--known-at", known_at)
    with _services(database_url, tenant=tenant) as services:
        events = services.store.subject_history(tenant, subject)
        states = services.decisions.state_as_of(tenant, subject, as_of=as_of_t, known_at=known_at_t)
    if as_json:
        _print_json(
            {
                "events": [e.to_dict() for e in events],
                "state": [decision_to_dict(s.decision) for s in states],
            }
        )
        return
    table = Table("position", "occurred at", "purpose", "action", "source", "notice")
    for e in sorted(events, key=lambda e: e.sort_key):
        notice = (
            f"{e.evidence.notice_id}:{e.evidence.notice_version}" if e.evidence.notice_id else ""
        )
        table.add_row(
            str(e.position),
            format_time(e.occurred_at),
            e.purpose,
            e.action.value,
            e.evidence.source.value,
            notice,
        )
    out.print(table)
    state = Table("purpose", "permitted", "reason", "position")
    for s in states:
        state.add_row(
            s.purpose.id,
            "yes" if s.decision.permitted else "no",
            s.decision.reason.value,
            str(s.decision.position or ""),
        )
    out.print(state)
