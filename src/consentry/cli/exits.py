"""The exit codes of `consentry`, and the one place where an error becomes one line on stderr.

Every command runs inside `ConsentryGroup.main`: whatever a command raises, the user sees one
line, `error: <what went wrong>`, and one of the codes below (docs/cli.md has the table; a test
walks every command and holds it to that). Commands raise `CliError` (through `fail`) for what
they detect themselves; the exceptions of the layers below (settings, database, files, broker)
are classified here once, so no command has to remember to.
"""

from __future__ import annotations

import errno
import sys
from enum import IntEnum
from typing import Any

import click
import typer
from pydantic import ValidationError
from typer.core import TyperGroup

from consentry.domain.errors import DomainError
from consentry.storage.base import SchemaError, StoreUnavailableError


class ExitCode(IntEnum):
    """What a non-zero exit of `consentry` means; docs/cli.md documents each."""

    OK = 0
    DATABASE = 1
    """The database cannot be opened or reached, does not exist, or its schema is not current."""
    REQUEST = 2
    """The command line or the request is wrong: a bad option, an unknown tenant or notice, input
    the recording rules refuse."""
    NOT_PERMITTED = 3
    """`check`: the answer is "not permitted" (not an error)."""
    VERIFY_FAILED = 4
    """`verify`: a receipt, proof or the ledger does not verify."""
    SETTINGS = 5
    """A setting (CONSENTRY_* or the option that overrides it) has a value that is not valid."""
    FILES = 6
    """A file or folder other than the database cannot be read or written (the signing keys
    folder, `checkpoint --out`, an input file)."""
    ADDRESS_UNAVAILABLE = 7
    """`serve`: the host and port cannot be listened on (in use, or not permitted)."""
    BROKER = 8
    """Kafka cannot be reached, or did not acknowledge what was sent."""
    INTERNAL = 70
    """A defect in Consentry (please report it with the line printed)."""
    INTERRUPTED = 130
    """Stopped with Ctrl-C."""


class CliError(Exception):
    """An error a command detected itself: printed as one line, exits with `code`."""

    def __init__(self, message: str, code: ExitCode = ExitCode.REQUEST) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def fail(message: str, code: ExitCode = ExitCode.REQUEST) -> CliError:
    """`raise fail("...", ExitCode.X)`: the command's own error."""
    return CliError(message, code)


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def settings_message(exc: ValidationError) -> str:
    """A Settings validation error as one line naming the setting (its environment variable)."""
    errors = exc.errors()
    first = errors[0]
    loc = [str(part) for part in first.get("loc", ())]
    message = first.get("msg", "is not valid")
    # A union reports one error per member type, at the same place: say it once.
    union = [e for e in errors if [str(p) for p in e.get("loc", ())][:-1] == loc[:-1]]
    if len(errors) > 1 and len(union) == len(errors) and len(loc) > 1:
        message = "must be one of: " + ", ".join(str(e["loc"][-1]) for e in errors)
        loc, errors = loc[:-1], [first]
    name = f"CONSENTRY_{loc[0].upper()}" if loc else "a setting"
    inner = f" (at {'.'.join(loc[1:])})" if len(loc) > 1 else ""
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    value = first.get("input")
    shown = f" {value!r}" if isinstance(value, str | int | float) and len(str(value)) < 80 else ""
    return f"{name}{inner}:{shown} {message}{more}"


#: The broker's exceptions, by name (confluent-kafka's live in its C module, `cimpl`).
KAFKA_ERRORS = frozenset({"KafkaException", "KafkaError", "PublishError"})


def _module(exc: BaseException) -> str:
    return type(exc).__module__ or ""


def classify(exc: BaseException) -> tuple[ExitCode, str]:
    """The exit code and the one-line message of an exception a command let through."""
    if isinstance(exc, CliError):
        return exc.code, exc.message
    if isinstance(exc, ValidationError):
        return ExitCode.SETTINGS, settings_message(exc)
    if isinstance(exc, SchemaError):
        return ExitCode.DATABASE, str(exc)
    if isinstance(exc, StoreUnavailableError):
        return ExitCode.DATABASE, f"database: {exc}"
    if isinstance(exc, DomainError):
        return ExitCode.REQUEST, str(exc)
    if isinstance(exc, OSError):
        where = exc.filename if exc.filename is not None else ""
        reason = exc.strerror or str(exc)
        if exc.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL):
            return ExitCode.ADDRESS_UNAVAILABLE, f"cannot listen: {reason}"
        return ExitCode.FILES, f"cannot use {where}: {reason}" if where else reason
    module = _module(exc)
    if module.startswith(("psycopg", "sqlite3")):
        return ExitCode.DATABASE, f"the database failed: {exc}"
    if module.startswith(("confluent_kafka", "cimpl")) or type(exc).__name__ in KAFKA_ERRORS:
        return ExitCode.BROKER, f"Kafka: {exc}"
    return ExitCode.INTERNAL, f"internal error ({type(exc).__name__}): {exc}"


def print_error(message: str) -> None:
    click.echo(f"error: {one_line(message)}", err=True)


class ConsentryGroup(TyperGroup):
    """The `consentry` group: runs a command and turns whatever escapes into one line and a
    documented code (CliRunner and the console script both come through `main`)."""

    def main(  # type: ignore[override]
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            code = super().main(
                args=args,
                prog_name=prog_name,
                complete_var=complete_var,
                standalone_mode=False,
                **extra,
            )
        except Exception as exc:
            return _exit(_handle(exc), standalone_mode)
        # A command that ended with typer.Exit(code) returns its code in this mode.
        return _exit(code if isinstance(code, int) else ExitCode.OK, standalone_mode)


#: Click's base of usage errors (Typer may vendor its own copy of Click: found by name).
_CLICK_EXCEPTION: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"
)


def _handle(exc: Exception) -> int:
    """Print what `exc` means in one line (or the help it asks for); its exit code."""
    name = type(exc).__name__
    if name == "NoArgsIsHelpError":  # `consentry keys`: the group's help, as Click shows it
        ctx = getattr(exc, "ctx", None)
        if ctx is not None:
            click.echo(ctx.get_help())
        return int(ExitCode.REQUEST)
    if isinstance(exc, typer.Exit) or name == "Exit":
        return int(getattr(exc, "exit_code", 0))
    if isinstance(exc, typer.Abort) or name == "Abort":
        print_error("interrupted")
        return int(ExitCode.INTERRUPTED)
    if isinstance(exc, _CLICK_EXCEPTION):  # bad options or arguments
        print_error(exc.format_message())  # type: ignore[attr-defined]
        return int(getattr(exc, "exit_code", ExitCode.REQUEST))
    code, message = classify(exc)
    print_error(message)
    return int(code)


def _exit(code: int, standalone_mode: bool) -> Any:
    if standalone_mode:
        sys.exit(code)
    return code
