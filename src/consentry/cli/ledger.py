"""Ledger commands: the integrator, verification, checkpoints and signing keys.

    consentry integrate                     # add committed events to the trees, until stopped
    consentry integrate --once              # catch up, then exit
    consentry verify receipt --receipt r.json --proof p.json --key KEY
    consentry verify database               # recompute every tree; non-zero exit names a bad leaf
    consentry checkpoint --out cp.txt       # the latest signed checkpoint, to publish or keep
    consentry keys verifiers                # the tenant's public keys (current and retired)
    consentry keys rotate-signing           # a new signing key; the old one stays verifiable

docs/ledger.md says what each proves.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from consentry.cli.core import DatabaseUrl, Tenant, _fail, _services, app, err, keys_app, out
from consentry.cli.exits import ExitCode
from consentry.config import Settings
from consentry.domain.errors import DomainError
from consentry.ledger.audit import AuditReport, audit_database
from consentry.ledger.checkpoint import VerifierKey
from consentry.ledger.integrator import BackgroundIntegrator
from consentry.ledger.offline import (
    VerificationError,
    parse_verifier_keys,
    verify_receipt_bundle,
)
from consentry.ledger.service import LedgerService
from consentry.services import Services
from consentry.signing import TenantKeyring
from consentry.storage import open_store

VERIFY_FAILED = ExitCode.VERIFY_FAILED
"""Exit status of a verification that found a difference (1 stays: the database or schema)."""

verify_app = typer.Typer(
    help="Verify a receipt offline, or a whole database.", no_args_is_help=True
)
app.add_typer(verify_app, name="verify")


def start_integrator(settings: Settings, services: Services) -> BackgroundIntegrator | None:
    """`serve`'s integrator thread (unless CONSENTRY_LEDGER_INTEGRATOR=false).

    With one worker it shares the API's store (on SQLite, one write lock in-process, no busy
    waiting) and is woken by each commit; with several, the API runs in other processes, so it
    opens its own store and polls (CONSENTRY_LEDGER_POLL_INTERVAL_MS).
    """
    if not settings.ledger_integrator:
        return None
    ledger = services.ledger
    if settings.workers > 1:
        ledger = LedgerService(
            open_store(settings.database_url),
            services.keyring,
            batch_size=settings.ledger_batch_size,
            checkpoint_interval=settings.ledger_checkpoint_interval_seconds,
            poll_interval=settings.ledger_poll_interval_ms / 1000,
        )
    background = ledger.background()
    services.recorder.listeners.append(background.wake)
    background.start()
    return background


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    )


@app.command()
def integrate(
    once: Annotated[
        bool, typer.Option("--once", help="Integrate what is committed now, then exit.")
    ] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Add committed events to each tenant's Merkle tree and sign checkpoints.

    Runs until stopped (Ctrl-C, SIGTERM); `serve` runs the same in a thread by default
    (CONSENTRY_LEDGER_INTEGRATOR). Several integrators are safe: they serialize, and the ledger's
    keys refuse a second write, so a tree is never forked.

    Example: consentry integrate --once
    """
    with _services(database_url) as services:
        ledger = services.ledger
        if once:
            backlog = max(0, services.store.head() - ledger.ledger.integrated_position())
            started = time.perf_counter()
            with _progress() as progress:
                task = progress.add_task("integrating", total=backlog or None, rate="")

                def advance(done: int) -> None:
                    progress.advance(task, done)

                count = ledger.integrator().catch_up(advance)
            elapsed = time.perf_counter() - started
            rate = f" ({count / elapsed:,.0f} events/s)" if count and elapsed > 0 else ""
            out.print(
                f"Integrated {count} events{rate}; the ledger is at position"
                f" {ledger.ledger.integrated_position()}."
            )
            return
        stop = threading.Event()
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        for sig in previous:
            signal.signal(sig, lambda *_: stop.set())
        background = ledger.background()
        background.start()
        out.print("Integrating; Ctrl-C to stop.")
        try:
            while not stop.wait(1.0):
                pass
        finally:
            background.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        out.print(f"Stopped; the ledger is at position {ledger.ledger.integrated_position()}.")


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise _fail(f"{what}: cannot read {path}: {exc.strerror}", ExitCode.FILES) from exc


def _json_file(path: Path, what: str) -> Any:
    try:
        return json.loads(_read(path, what))
    except ValueError as exc:
        raise _fail(f"{what}: {path} is not JSON: {exc}") from exc


@verify_app.command("receipt")
def verify_receipt_command(
    receipt: Annotated[
        Path,
        typer.Option(help="JSON: a receipt, or an event or POST /v1/consents response with one."),
    ],
    proof: Annotated[
        Path, typer.Option(help="JSON of GET /v1/ledger/proofs/inclusion for the event.")
    ],
    key: Annotated[
        list[str],
        typer.Option(
            "--key",
            "-k",
            help="A public verifier key (name+keyid+base64), or a file of them or of the JSON"
            " of GET /v1/ledger/keys. Repeatable: give retired keys too.",
        ),
    ],
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="A signed checkpoint you kept; default: the one in the proof."),
    ] = None,
    event: Annotated[
        Path | None,
        typer.Option(help="JSON of the event (as exported): check its bytes too."),
    ] = None,
    newer_checkpoint: Annotated[
        Path | None, typer.Option(help="A newer checkpoint, to carry the proof over to it.")
    ] = None,
    consistency: Annotated[
        Path | None,
        typer.Option(help="JSON of GET /v1/ledger/proofs/consistency to the newer checkpoint."),
    ] = None,
) -> None:
    """Check a receipt offline: its signature, its inclusion proof and the checkpoint.

    Needs no server and no database: only the files and the tenant's public key(s). Exit 0
    when everything verifies, 4 (and the step that failed) otherwise.

    Example: consentry verify receipt --receipt receipt.json --proof proof.json
    --key "consentry/default+1d3f9c2a+AXd0..."
    """
    texts = [_read(Path(k), "--key") if Path(k).is_file() else k for k in key]
    try:
        check = verify_receipt_bundle(
            _json_file(receipt, "--receipt"),
            _json_file(proof, "--proof"),
            parse_verifier_keys(texts),
            checkpoint=_read(checkpoint, "--checkpoint") if checkpoint else None,
            event=_json_file(event, "--event") if event else None,
            newer_checkpoint=(
                _read(newer_checkpoint, "--newer-checkpoint") if newer_checkpoint else None
            ),
            consistency=_json_file(consistency, "--consistency") if consistency else None,
        )
    except VerificationError as exc:
        err.print(f"[red]NOT VERIFIED:[/red] {exc}")
        raise typer.Exit(VERIFY_FAILED) from exc
    for step in check.steps:
        out.print(f"[green]✓[/green] {step}", highlight=False)
    out.print("[bold green]verified[/bold green]")


@verify_app.command("database")
def verify_database(
    workers: Annotated[
        int | None,
        typer.Option(
            help="Processes reading and hashing events in parallel [default: one per CPU, up to"
            " 4, for large logs]",
            min=1,
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    key: Annotated[
        list[str] | None,
        typer.Option(
            "--key",
            "-k",
            help="Check checkpoints with these public keys (verifier keys, or files of them or"
            " of /v1/ledger/keys JSON) instead of the keys folder's. Repeatable.",
        ),
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Recompute every tenant's Merkle tree from the events and check the whole ledger.

    Checks each event against its leaf, every stored node, and every stored checkpoint
    (signature with every key the tenant used, root, consistency with the next). Exit 0 when
    all agree; 4 when anything differs, naming the first bad leaf (position and event id).
    Uses public keys only, and never creates one.

    Example: consentry verify database --key keys.json
    """
    given: list[VerifierKey] | None = None
    if key:
        try:
            given = parse_verifier_keys(
                _read(Path(k), "--key") if Path(k).is_file() else k for k in key
            )
        except VerificationError as exc:
            raise _fail(str(exc)) from exc
    with _services(database_url) as services:
        keyring = services.keyring

        def public_keys(tenant: str) -> list[VerifierKey]:
            if given is not None:
                return given
            return _existing_verifiers(keyring, tenant)

        ledger = services.ledger.ledger
        total = ledger.integrated_position()
        if workers is None:
            workers = min(os.cpu_count() or 1, 4) if total >= 500_000 else 1
        started = time.perf_counter()
        with _progress() as progress:
            task = progress.add_task("verifying", total=total or None, rate="")
            done = 0

            def advance(count: int) -> None:
                nonlocal done
                done += count
                elapsed = time.perf_counter() - started
                rate = f"{done / elapsed:,.0f} events/s" if elapsed > 0 else ""
                progress.update(task, advance=count, rate=rate)

            report = audit_database(
                ledger,
                public_keys,
                progress=advance,
                workers=workers,
                database_url=services.settings.database_url,
            )
        elapsed = time.perf_counter() - started
    if as_json:
        sys.stdout.write(json.dumps(_report_dict(report, elapsed), indent=2) + "\n")
    else:
        _print_report(report, elapsed)
    if not report.ok:
        raise typer.Exit(VERIFY_FAILED)


def _existing_verifiers(keyring: TenantKeyring, tenant: str) -> list[VerifierKey]:
    """The tenant's public keys if it has any: unlike keyring.verifiers, never creates a key
    (a verification run on another machine must not mint keys for the tenants it checks)."""
    try:
        folder = keyring._folder(tenant)
    except DomainError:
        return []  # not a name a key folder can have: no key of ours signed for it
    if tenant in keyring.inline or (folder / "current.key").exists():
        return keyring.verifiers(tenant)
    return [
        VerifierKey.parse(pub.read_text(encoding="utf-8"))
        for pub in sorted((folder / "retired").glob("*.pub"))
    ]


def _report_dict(report: AuditReport, elapsed: float) -> dict[str, Any]:
    first = report.first_bad_leaf
    return {
        "ok": report.ok,
        "events": report.events,
        "pending": report.pending,
        "integrated_position": report.integrated_position,
        "trees": report.trees,
        "checkpoints": report.checkpoints,
        "seconds": round(elapsed, 3),
        "first_bad_leaf": (
            {
                "position": first.position,
                "event_id": first.event_id,
                "tenant": first.tenant,
                "leaf_index": first.leaf_index,
                "kind": first.kind,
            }
            if first
            else None
        ),
        "problems": [
            {
                "kind": p.kind,
                "message": p.message,
                "tenant": p.tenant,
                "position": p.position,
                "event_id": p.event_id,
                "leaf_index": p.leaf_index,
            }
            for p in report.problems
        ],
        "truncated": report.truncated,
    }


def _print_report(report: AuditReport, elapsed: float) -> None:
    rate = f", {report.events / elapsed:,.0f} events/s" if elapsed > 0 and report.events else ""
    out.print(
        f"{report.events} events up to position {report.integrated_position} checked in"
        f" {elapsed:.2f} s{rate}; {report.checkpoints} stored checkpoints;"
        f" {report.pending} events not yet integrated."
    )
    if report.trees:
        table = Table("tenant", "leaves")
        for tenant, size in sorted(report.trees.items()):
            table.add_row(tenant, str(size))
        out.print(table)
    if report.ok:
        out.print("[bold green]The ledger matches the events.[/bold green]")
        return
    first = report.first_bad_leaf
    if first is not None:
        err.print(
            f"[bold red]First bad leaf: position {first.position}, event"
            f" {first.event_id or 'unknown'}[/bold red] (tenant {first.tenant!r}, {first.kind})",
            highlight=False,
        )
    err.print(f"[red]{len(report.problems)} problems{'+' if report.truncated else ''}:[/red]")
    for problem in report.problems[:20]:
        err.print(f"  {problem.kind}: {problem.message}", highlight=False, soft_wrap=True)
    if len(report.problems) > 20:
        err.print(f"  ... and {len(report.problems) - 20} more (--json lists them all)")


@app.command()
def checkpoint(
    tenant: Tenant = "default",
    size: Annotated[
        int | None, typer.Option(help="The tree size [default: the latest]", min=0)
    ] = None,
    out_file: Annotated[
        Path | None,
        typer.Option("--out", help="Write it to this file (atomically) instead of stdout."),
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Print a signed checkpoint of the tenant's ledger: keep it, or publish it.

    Run it from cron with --out into a web root to publish checkpoints at a URL, or hand the
    file to a timestamping service (docs/ledger.md, "Publishing checkpoints").

    Example: consentry checkpoint --tenant default --out /var/www/consentry/checkpoint
    """
    with _services(database_url, tenant=tenant) as services:
        view = services.ledger.checkpoint(tenant, size)
    if out_file is None:
        sys.stdout.write(view.note)
        return
    tmp = out_file.with_name(out_file.name + ".tmp")
    try:
        tmp.write_text(view.note, encoding="utf-8")
        os.replace(tmp, out_file)
    except OSError as exc:
        raise _fail(f"--out: cannot write {out_file}: {exc.strerror}", ExitCode.FILES) from exc
    err.print(f"Checkpoint of {view.tree_size} leaves written to {out_file}")


@keys_app.command("verifiers")
def keys_verifiers(tenant: Tenant = "default", database_url: DatabaseUrl = None) -> None:
    """Print the tenant's public verifier keys, current first, then retired ones.

    Give them to auditors through a channel they trust; `consentry verify receipt --key` and
    Go's golang.org/x/mod/sumdb/note read this form.

    Example: consentry keys verifiers --tenant default
    """
    with _services(database_url, tenant=tenant) as services:
        for key in services.keyring.verifiers(tenant):
            sys.stdout.write(key.to_string() + "\n")


@keys_app.command("rotate-signing")
def keys_rotate_signing(tenant: Tenant = "default", database_url: DatabaseUrl = None) -> None:
    """Start a new signing key for the tenant's checkpoints and receipts.

    The old public key is kept (retired), so everything it signed stays verifiable; publish
    the new one (printed last) to auditors. Restart servers to use the new key.

    Example: consentry keys rotate-signing --tenant default
    """
    with _services(database_url, tenant=tenant) as services:
        old = services.keyring.signing_key(tenant)
        new = services.keyring.rotate(tenant)
    err.print(f"Retired key {old.key_id.hex()} (still verifies what it signed).")
    err.print(f"New signing key {new.key_id.hex()} for {new.name}; its public verifier key:")
    sys.stdout.write(new.verifier.to_string() + "\n")
