"""Collection commands: check consent tokens at the edge, print the key that verifies them, make
preference-center links, and set up the demo site.

    consentry tokens verify "$COOKIE" --public-key "consentry/default+1a2b3c4d+AU..."
    consentry tokens public-key --tenant default
    consentry tokens preference-link u-123 --base-url https://consent.example.com
    consentry demo
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from consentry.bootstrap import DEFAULT_TENANT
from consentry.cli.core import DatabaseUrl, Tenant, _fail, _services, app, out
from consentry.cli.exits import ExitCode
from consentry.storage.collection import CollectionStore
from consentry.tokens import CONSENT, TokenError, public_jwk, verify_token
from consentry.ui import banner as ui
from consentry.ui import pages

tokens_app = typer.Typer(
    help="Consent tokens (the `consentry` cookie): verify them with only the tenant's public key.",
    no_args_is_help=True,
)
app.add_typer(tokens_app, name="tokens")


@tokens_app.command("verify")
def tokens_verify(
    token: Annotated[str, typer.Argument(help="The token (cookie value); '-' reads stdin.")],
    public_key: Annotated[
        str | None,
        typer.Option(
            "--public-key",
            "-k",
            help="The tenant's public key: verifier string (name+id+base64), base64, PEM or JWK.",
            show_default=False,
        ),
    ] = None,
    public_key_file: Annotated[
        Path | None,
        typer.Option(
            "--public-key-file", help="A file holding the public key.", show_default=False
        ),
    ] = None,
    tenant: Annotated[
        str | None, typer.Option("--tenant", "-t", help="Also require this tenant.")
    ] = None,
    kind: Annotated[
        str, typer.Option(help="Token kind: consent (cookie), sid (session) or pref (link).")
    ] = CONSENT,
) -> None:
    """Verify a token offline and print its claims as JSON; exit 4 if it is not valid.

    Needs no server and no database: only the public key (from `consentry tokens public-key`
    or the banner's config, `token_key`).

    Example: consentry tokens verify "$COOKIE" -k "$(cat tenant.pub)"
    """
    if token == "-":
        token = sys.stdin.read().strip()
    if public_key_file is not None:
        try:
            public_key = public_key_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise _fail(
                f"--public-key-file: cannot read {public_key_file}: {exc.strerror}", ExitCode.FILES
            ) from exc
    if not public_key:
        raise _fail("give the tenant's public key with --public-key or --public-key-file")
    try:
        verified = verify_token(token, public_key, kind=kind, tenant=tenant)
    except TokenError as exc:
        raise _fail(f"invalid token: {exc}", ExitCode.VERIFY_FAILED) from exc
    sys.stdout.write(json.dumps({"valid": True, "claims": verified.claims}, indent=2) + "\n")


@tokens_app.command("public-key")
def tokens_public_key(
    tenant: Tenant = DEFAULT_TENANT,
    as_jwk: Annotated[bool, typer.Option("--jwk", help="Print a JWK instead.")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Print the tenant's current public key (signed-note verifier string, or --jwk).

    Reads the key folder or CONSENTRY_SIGNING_KEYS; creates the tenant's key on first use. The
    tenant must exist in the database (a typo must not mint a key for a tenant nobody has).

    Example: consentry tokens public-key --tenant default > default.pub
    """
    with _services(database_url, tenant=tenant) as services:
        verifier = services.keyring.signing_key(tenant).verifier
    if as_jwk:
        out.print(json.dumps(public_jwk(verifier)), soft_wrap=True, highlight=False)
    else:
        out.print(verifier.to_string(), soft_wrap=True, highlight=False)


@tokens_app.command("preference-link")
def tokens_preference_link(
    subject: Annotated[str, typer.Argument(help="The subject whose preference center opens.")],
    tenant: Tenant = DEFAULT_TENANT,
    base_url: Annotated[
        str, typer.Option(help="Where people reach this server.")
    ] = "http://127.0.0.1:8000",
    hours: Annotated[int, typer.Option(min=1, max=720, help="Lifetime of the link.")] = 72,
    database_url: DatabaseUrl = None,
) -> None:
    """Print a signed link to a subject's preference center (e.g. for an email footer).

    Example: consentry tokens preference-link u-123 --base-url https://consent.example.com
    """
    with _services(database_url, tenant=tenant) as services:
        token = ui.preference_link_token(services, tenant, subject, hours)
    out.print(f"{base_url.rstrip('/')}/preferences?t={token}", soft_wrap=True, highlight=False)


@app.command()
def demo(database_url: DatabaseUrl = None) -> None:
    """Set up the demo site (/demo) on its own tenant, `demo`: demo purposes, a notice, a signal
    mapping and the banner. `serve --demo` does the same on the first visit to /demo. Refused
    (exit 2) when the `demo` tenant already holds purposes or events of its own.

    Example: consentry demo && consentry serve --demo   # then open http://127.0.0.1:8000/demo
    """
    with _services(database_url) as services:
        created = pages.ensure_demo(services, CollectionStore(services.store), pages.DEMO_TENANT)
    out.print(
        "The demo is set up" if created else "The demo was already set up",
        "; run `consentry serve --demo` and open http://127.0.0.1:8000/demo",
        sep="",
    )
