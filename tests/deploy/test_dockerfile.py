"""The Dockerfile, checked as far as this machine can without a Docker engine: its structure
(multi-stage, non-root, no build tools or pip in the final image), its entry point and command
against the CLI, its settings against Settings, and its HEALTHCHECK run against a real server."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from consentry.config import Settings
from tests.deploy.conftest import (
    ROOT,
    check_cli_args,
    clean_env,
    free_port,
    serve,
    stop,
    wait_http,
)

DOCKERFILE = ROOT / "Dockerfile"


@dataclass
class Instruction:
    keyword: str
    args: str

    def exec_form(self) -> list[str]:
        """The JSON (exec) form's arguments; a shell-form line split like a shell."""
        text = self.args.strip()
        if text.startswith("["):
            value = json.loads(text)
            assert isinstance(value, list) and all(isinstance(v, str) for v in value)
            return value
        return shlex.split(text)


def parse(text: str) -> list[Instruction]:
    """Instructions in order: comments dropped, backslash continuations joined."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, args = line.partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    out: list[list[Instruction]] = []
    for ins in instructions:
        if ins.keyword == "FROM":
            out.append([])
        if out:
            out[-1].append(ins)
    return out


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return parse(DOCKERFILE.read_text(encoding="utf-8"))


def final(instructions: list[Instruction]) -> list[Instruction]:
    return stages(instructions)[-1]


def only(stage: list[Instruction], keyword: str) -> Instruction:
    found = [i for i in stage if i.keyword == keyword]
    assert len(found) == 1, f"expected one {keyword} in the final stage, found {len(found)}"
    return found[0]


def test_it_is_multi_stage_and_the_final_stage_copies_only_the_built_environment(
    instructions: list[Instruction],
) -> None:
    all_stages = stages(instructions)
    assert len(all_stages) >= 2
    names = [s[0].args.split()[-1] for s in all_stages[:-1]]
    copies = [i for i in final(instructions) if i.keyword == "COPY"]
    assert copies, "the final stage copies nothing"
    for copy in copies:
        assert copy.args.startswith("--from="), f"the final stage copies source: {copy.args}"
        assert copy.args.split()[0].removeprefix("--from=") in names
    base = final(instructions)[0].args.split()[0]
    assert "slim" in base, f"the final image should start from a slim base, not {base}"


def test_the_final_stage_has_no_build_tools_and_no_pip(instructions: list[Instruction]) -> None:
    runs = " ".join(i.args for i in final(instructions) if i.keyword == "RUN")
    for tool in ("gcc", "build-essential", "make ", "cc ", "apt-get install", "pip install"):
        assert tool not in runs, f"the final stage installs or uses {tool.strip()!r}"
    assert re.search(r"pip uninstall -y pip", runs), "pip should be removed from the final image"
    build_runs = " ".join(i.args for i in stages(instructions)[0] if i.keyword == "RUN")
    assert "pip uninstall -y pip" in build_runs, "the copied venv should carry no pip either"


def test_it_runs_as_an_unprivileged_user_after_every_run_step(
    instructions: list[Instruction],
) -> None:
    stage = final(instructions)
    user = only(stage, "USER").args.split(":")[0]
    assert user not in ("root", "0"), "the image must not run as root"
    assert stage.index(only(stage, "USER")) > max(
        i for i, ins in enumerate(stage) if ins.keyword == "RUN"
    ), "USER must come after the last RUN (so nothing later runs as root)"
    runs = " ".join(i.args for i in stage if i.keyword == "RUN")
    assert f"useradd --system --uid 10001 --gid {user}" in runs


def test_the_entry_point_is_the_cli_and_the_default_command_exists(
    instructions: list[Instruction],
) -> None:
    stage = final(instructions)
    assert only(stage, "ENTRYPOINT").exec_form() == ["consentry"]
    cmd = only(stage, "CMD").exec_form()
    assert cmd == ["serve"]
    check_cli_args(cmd)


def test_its_settings_are_settings_that_exist_and_validate(
    instructions: list[Instruction], monkeypatch: pytest.MonkeyPatch
) -> None:
    env: dict[str, str] = {}
    for ins in final(instructions):
        if ins.keyword == "ENV":
            for pair in shlex.split(ins.args):
                name, _, value = pair.partition("=")
                env[name] = value
    consentry = {k: v for k, v in env.items() if k.startswith("CONSENTRY_")}
    known = {f"CONSENTRY_{name.upper()}" for name in Settings.model_fields}
    assert set(consentry) <= known, f"not settings: {set(consentry) - known}"
    for name in [k for k in list(__import__("os").environ) if k.startswith("CONSENTRY_")]:
        monkeypatch.delenv(name)
    for name, value in consentry.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.host == "0.0.0.0", "in a container the API must listen on every interface"
    assert str(settings.signing_keys_dir).startswith("/var/lib/consentry")


def test_what_it_copies_exists_and_is_not_ignored(instructions: list[Instruction]) -> None:
    ignore = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    kept = {p.removeprefix("!").rstrip("/") for p in ignore if p.startswith("!")}
    for ins in stages(instructions)[0]:
        if ins.keyword == "COPY":
            *sources, _ = ins.args.split()
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: no such file"
                assert source.rstrip("/") in kept, f"COPY {source} is excluded by .dockerignore"


def test_the_healthcheck_command_passes_against_a_running_server(
    instructions: list[Instruction], tmp_path: Path
) -> None:
    """The HEALTHCHECK's own command, run as Docker would, against `consentry serve`."""
    check = only(final(instructions), "HEALTHCHECK")
    options, _, command = check.args.partition("CMD")
    assert "--interval" in options and "--timeout" in options
    argv = Instruction("CMD", command).exec_form()
    assert argv[0] == "python" and "/healthz" in argv[-1]
    argv[0] = sys.executable
    port = free_port()
    proc = serve(tmp_path, CONSENTRY_PORT=str(port))
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc)
        ok = subprocess.run(argv, env=clean_env(CONSENTRY_PORT=str(port)), timeout=30)
        assert ok.returncode == 0, "the healthcheck failed against a healthy server"
    finally:
        stop(proc)
    down = subprocess.run(
        argv, env=clean_env(CONSENTRY_PORT=str(port)), timeout=30, capture_output=True
    )
    assert down.returncode != 0, "the healthcheck passed with no server: it checks nothing"
