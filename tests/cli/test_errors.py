"""Every command of `consentry`, walked: each error is one line on stderr and a documented code.

The commands are read from the Typer app itself, so a command added later is held to the rule
without anyone listing it here. Each runs with inputs that must fail (a database that cannot be
opened or does not exist, a setting with a bad value, a tenant that does not exist), and must say
so in one line, with the code docs/cli.md gives for it, never a traceback and never code 70
(ExitCode.INTERNAL: a defect).
"""

from __future__ import annotations

import re
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from consentry.cli import app
from consentry.cli.exits import ExitCode

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
runner = CliRunner()

#: Values for required parameters, by parameter name (anything else gets "x").
SAMPLES: dict[str, str] = {
    "subject": "u-1",
    "choice": "email=given",
    "purpose": "email",
    "role": "checker",
    "purpose_id": "email",
    "name": "Email",
    "basis": "consent",
    "notice_id": "privacy",
    "version": "1",
    "token": "x",
    "key": "x",
    "key_id": "0123456789ab",
}
#: Required parameters that name a file to read.
FILE_PARAMS = {"text_file", "receipt", "proof"}


def commands() -> Iterator[tuple[tuple[str, ...], Any]]:
    def walk(command: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
        if hasattr(command, "commands"):
            for name, sub in sorted(command.commands.items()):
                yield from walk(sub, (*path, name))
        else:
            yield path, command

    yield from walk(typer.main.get_command(app), ())


COMMANDS = dict(commands())


def params(command: Any) -> set[str]:
    return {p.name for p in command.params}


def argv(path: tuple[str, ...], command: Any, files: Path, **extra: str) -> list[str]:
    """The command with a value for each required parameter (and `extra` options)."""
    args = list(path)
    for p in command.params:
        if not p.required:
            continue
        file = str(files / f"{p.name}.json")
        value = file if p.name in FILE_PARAMS else SAMPLES.get(p.name, "x")
        if p.param_type_name == "argument":
            args.append(value)
        else:
            args += [p.opts[0], value]
    for option, value in extra.items():
        args += [f"--{option.replace('_', '-')}", value]
    return args


class Hung(Exception):
    pass


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise Hung("the command did not end within 60 s")


def invoke(
    args: list[str], env: dict[str, str], capfd: pytest.CaptureFixture[str] | None = None
) -> tuple[int, str]:
    """Run one command in-process; its exit code and stderr (bounded: a hang fails). With
    `capfd`, what native code (librdkafka) wrote to file descriptor 2 counts too."""
    if capfd is not None:
        capfd.readouterr()
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(60)
    try:
        result = runner.invoke(app, args, env=env)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    if isinstance(result.exception, Hung):
        pytest.fail(f"consentry {' '.join(args)} hung")
    native = capfd.readouterr().err if capfd is not None else ""
    return result.exit_code, result.stderr + native


def assert_one_line(args: list[str], code: int, stderr: str) -> None:
    shown = f"consentry {' '.join(args)} -> {code}: {stderr!r}"
    assert "Traceback" not in stderr, shown
    assert code in {c.value for c in ExitCode}, shown
    assert code != ExitCode.INTERNAL, shown
    if code != ExitCode.OK:
        assert len(stderr.strip().splitlines()) == 1, shown


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def files(tmp_path: Path) -> Path:
    folder = tmp_path / "inputs"
    folder.mkdir()
    for name in FILE_PARAMS:
        (folder / f"{name}.json").write_text("{}")
    return folder


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def base_env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return {
        "CONSENTRY_DATABASE_URL": database_url,
        "CONSENTRY_SIGNING_KEYS_DIR": str(tmp_path / "keys"),
        "CONSENTRY_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{closed_port()}",
        "CONSENTRY_KAFKA_CLIENT_CONFIG": '{"socket.timeout.ms": 2000}',
        "CONSENTRY_PORT": str(closed_port()),
    }


def test_the_walk_finds_every_command() -> None:
    names = {" ".join(p) for p in COMMANDS}
    assert {"serve", "keys list", "verify database", "dlq replay", "relay", "commands"} <= names


def test_a_database_that_cannot_be_opened(
    tmp_path: Path, files: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    env = base_env(tmp_path, f"sqlite:///{tmp_path / 'missing' / 'consentry.db'}")
    for path, command in COMMANDS.items():
        args = argv(path, command, files)
        code, stderr = invoke(args, env, capfd)
        assert_one_line(args, code, stderr)
        if "database_url" in params(command):
            assert code == ExitCode.DATABASE, (args, code, stderr)
            assert "missing" in stderr, stderr
        elif "bootstrap_servers" in params(command):  # the broker (a closed port) is next
            assert code == ExitCode.BROKER, (args, code, stderr)


def test_no_command_but_migrate_and_serve_creates_a_database(
    tmp_path: Path, files: Path, busy_port: int
) -> None:
    """A missing SQLite file is an error, not an empty database left behind; `serve` checks its
    address before it creates anything."""
    database = tmp_path / "absent.db"
    env = {**base_env(tmp_path, f"sqlite:///{database}"), "CONSENTRY_PORT": str(busy_port)}
    for path, command in COMMANDS.items():
        if path == ("migrate",):
            continue
        args = argv(path, command, files)
        code, stderr = invoke(args, env)
        assert_one_line(args, code, stderr)
        assert not database.exists(), f"consentry {' '.join(args)} created {database}"
        if path == ("serve",):
            assert code == ExitCode.ADDRESS_UNAVAILABLE, stderr
            assert str(busy_port) in stderr
        elif "database_url" in params(command):
            assert code == ExitCode.DATABASE, (args, code, stderr)
            assert "does not exist" in stderr


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CONSENTRY_KAFKA_CLIENT_CONFIG", '{"socket.timeout.ms": [1]}'),
        ("CONSENTRY_DATABASE_URL", "mysql://db/consentry"),
        ("CONSENTRY_REDIS_URL", "localhost:6379"),
        ("CONSENTRY_LOCAL_CACHE_SUBJECTS", "-5"),
        ("CONSENTRY_RELAY_DELIVERY_TIMEOUT_SECONDS", "soon"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(
    tmp_path: Path, files: Path, variable: str, value: str
) -> None:
    env = {**base_env(tmp_path, f"sqlite:///{tmp_path / 'consentry.db'}"), variable: value}
    for path, command in COMMANDS.items():
        args = argv(path, command, files)
        code, stderr = invoke(args, env)
        assert_one_line(args, code, stderr)
        if params(command) & {"database_url", "bootstrap_servers"}:
            assert code == ExitCode.SETTINGS, (args, code, stderr)
            assert variable in stderr, stderr


def test_an_unknown_tenant_is_an_error(tmp_path: Path, files: Path, db_url: str) -> None:
    env = base_env(tmp_path, db_url)
    code, stderr = invoke(["migrate"], env)
    assert code == 0, stderr
    tenant_commands = [
        (p, c) for p, c in COMMANDS.items() if {"tenant", "database_url"} <= params(c)
    ]
    assert len(tenant_commands) >= 10
    for path, command in tenant_commands:
        args = argv(path, command, files, tenant="nosuch")
        code, stderr = invoke(args, env)
        assert_one_line(args, code, stderr)
        assert code == ExitCode.REQUEST, (args, code, stderr)
        assert "'nosuch' does not exist" in stderr, stderr
    assert not (tmp_path / "keys" / "nosuch").exists(), "a key was made for a missing tenant"


def test_unusable_folders_are_one_line_errors(tmp_path: Path, files: Path) -> None:
    """A keys folder or --out that cannot be written (a path through a file: root ignores
    permission bits, so that is how a test makes a folder unusable)."""
    env = base_env(tmp_path, f"sqlite:///{tmp_path / 'consentry.db'}")
    assert invoke(["migrate"], env)[0] == 0
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, stderr = invoke(["checkpoint", "--out", str(blocker / "cp.txt")], env)
    assert_one_line([], code, stderr)
    assert code == ExitCode.FILES and "--out" in stderr, stderr
    env["CONSENTRY_SIGNING_KEYS_DIR"] = str(blocker / "keys")
    for args in (
        ["checkpoint"],
        ["keys", "verifiers"],
        ["keys", "rotate-signing"],
        ["tokens", "public-key"],
        ["tokens", "preference-link", "u-1"],
        ["serve"],
    ):
        code, stderr = invoke(args, env)
        assert_one_line(args, code, stderr)
        assert code == ExitCode.FILES, (args, code, stderr)
        assert "a-file" in stderr, stderr


def test_docs_document_every_exit_code_and_every_command() -> None:
    text = DOCS.read_text()
    table = dict(re.findall(r"^\| *(\d+) *\| *`([A-Z_]+)`", text, flags=re.M))
    assert table == {str(c.value): c.name for c in ExitCode}, table
    missing = [" ".join(p) for p in COMMANDS if f"consentry {' '.join(p)}" not in text]
    assert not missing, f"document these commands in docs/cli.md: {missing}"


def test_verify_database_never_creates_a_database(tmp_path: Path, db_url: str) -> None:
    """A missing SQLite file, or an empty PostgreSQL schema, is an error and stays as it was."""
    from consentry.storage import open_store
    from consentry.storage.base import SchemaState

    if db_url.startswith("sqlite"):
        db_url = f"sqlite:///{tmp_path / 'never.db'}"
    env = base_env(tmp_path, db_url)
    code, stderr = invoke(["verify", "database"], env)
    assert_one_line(["verify", "database"], code, stderr)
    assert code == ExitCode.DATABASE, stderr
    if db_url.startswith("sqlite"):
        assert not (tmp_path / "never.db").exists()
        assert "does not exist" in stderr
        return
    assert "consentry migrate" in stderr
    store = open_store(db_url)
    try:
        assert store.schema_status().state is SchemaState.EMPTY
    finally:
        store.close()


def test_an_unreachable_broker_is_one_line(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """librdkafka logs each failed connection attempt on stderr itself; a command that fails
    because of it must still say so in one line (file descriptor 2 is read too)."""
    env = base_env(tmp_path, f"sqlite:///{tmp_path / 'consentry.db'}")
    assert invoke(["migrate"], env)[0] == 0
    for args in (["commands"], ["dlq", "replay"]):
        code, stderr = invoke(args, env, capfd)
        assert_one_line(args, code, stderr)
        assert code == ExitCode.BROKER, (args, code, stderr)
