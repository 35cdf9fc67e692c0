"""compose.yaml, checked without a Docker engine: the Compose Specification's JSON schema, the
services and their order of start, every command against the CLI, every CONSENTRY_* variable
against Settings, and `docker compose config` where a Compose binary is installed."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import pytest
from jsonschema import Draft7Validator

from consentry.config import Settings
from tests.deploy.conftest import DEPLOY, ROOT, check_cli_args, load_mapping

COMPOSE = ROOT / "compose.yaml"
APP_SERVICES = ("migrate", "api", "relay", "integrator", "commands")
#: What the values of compose's required variables are for these checks.
TEST_VARIABLES = {"POSTGRES_PASSWORD": "s3cret"}
_VARIABLE = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def interpolate(value: Any, variables: dict[str, str]) -> Any:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error}, as `docker compose config` does."""
    if isinstance(value, dict):
        return {k: interpolate(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, variables) for v in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2) or "", match.group(3) or ""
        if variables.get(name):
            return variables[name]
        if op.endswith("-"):
            return arg
        if op.endswith("?"):
            raise KeyError(f"{name}: {arg}")
        return ""

    return _VARIABLE.sub(one, value)


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return load_mapping(COMPOSE)


@pytest.fixture(scope="module")
def compose(raw: dict[str, Any]) -> dict[str, Any]:
    return dict(interpolate(raw, TEST_VARIABLES))


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(compose["services"])


def test_it_follows_the_compose_specification(raw: dict[str, Any]) -> None:
    """Validated with the Compose Specification's schema (as vendored by check-jsonschema)."""
    text = (
        resources.files("check_jsonschema.builtin_schemas.vendor")
        .joinpath("compose-spec.json")
        .read_text(encoding="utf-8")
    )
    schema = json.loads(text)
    errors = sorted(Draft7Validator(schema).iter_errors(raw), key=lambda e: list(e.path))
    assert not errors, [f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors[:5]]


def test_it_has_the_services_of_a_deployment(compose: dict[str, Any]) -> None:
    found = services(compose)
    for name in ("postgres", "redis", "kafka", *APP_SERVICES):
        assert name in found, f"compose.yaml has no {name} service"
    assert found["postgres"]["image"].startswith("postgres:")
    assert found["redis"]["image"].startswith("redis:")
    assert found["kafka"]["image"].startswith("apache/kafka:")
    assert found["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    for name in APP_SERVICES:
        assert found[name]["build"] == ".", f"{name} is not built from this repository"


def test_every_command_exists_in_the_cli(compose: dict[str, Any]) -> None:
    commands = {name: services(compose)[name]["command"] for name in APP_SERVICES}
    assert commands["migrate"] == ["migrate"]
    assert commands["api"] == ["serve"]
    assert commands["relay"][0] == "relay"
    assert commands["integrator"] == ["integrate"]
    for args in commands.values():
        check_cli_args(list(args))


def test_migrations_run_once_before_everything_that_uses_the_database(
    compose: dict[str, Any],
) -> None:
    found = services(compose)
    migrate = found["migrate"]
    assert migrate["restart"] == "no", "the migration is one-shot"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in set(APP_SERVICES) - {"migrate"}:
        needs = found[name]["depends_on"]
        assert needs["migrate"]["condition"] == "service_completed_successfully", name
    for name, service in found.items():
        depends = service.get("depends_on") or {}
        if isinstance(depends, list):
            depends = {name: {} for name in depends}
        for needed, how in depends.items():
            assert needed in found, f"{name} depends on a service that does not exist: {needed}"
            condition = how.get("condition") if isinstance(how, dict) else None
            if condition == "service_healthy":
                check = found[needed].get("healthcheck") or {}
                assert check.get("test") and not check.get("disable"), (
                    f"{name} waits for {needed} to be healthy, which has no healthcheck"
                )


def test_only_the_api_serves_http_and_the_workers_run_it_not(compose: dict[str, Any]) -> None:
    env = services(compose)["api"]["environment"]
    assert env["CONSENTRY_RELAY_IN_SERVE"] == "false", "the relay is its own service"
    assert env["CONSENTRY_LEDGER_INTEGRATOR"] == "false", "the integrator is its own service"
    for name in ("migrate", "integrator"):
        assert services(compose)[name]["healthcheck"] == {"disable": True}


def test_every_consentry_variable_is_a_setting_and_validates(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    known = {f"CONSENTRY_{name.upper()}" for name in Settings.model_fields}
    for name in APP_SERVICES:
        env = {k: str(v) for k, v in services(compose)[name]["environment"].items()}
        ours = {k: v for k, v in env.items() if k.startswith("CONSENTRY_")}
        assert set(ours) <= known, f"{name}: not settings: {sorted(set(ours) - known)}"
        for var in [k for k in os.environ if k.startswith("CONSENTRY_")]:
            monkeypatch.delenv(var)
        for var, value in ours.items():
            monkeypatch.setenv(var, value)
        settings = Settings()
        url = urlsplit(settings.database_url)
        postgres = services(compose)["postgres"]["environment"]
        assert (url.hostname, url.port) == ("postgres", 5432)
        assert url.username == postgres["POSTGRES_USER"]
        assert url.password == postgres["POSTGRES_PASSWORD"] == TEST_VARIABLES["POSTGRES_PASSWORD"]
        assert url.path == "/" + postgres["POSTGRES_DB"]
        assert settings.kafka_bootstrap_servers == "kafka:9092"


def test_the_api_and_the_integrator_share_the_signing_keys(compose: dict[str, Any]) -> None:
    found = services(compose)
    declared = set(compose["volumes"])
    keys_dir = found["api"]["environment"]["CONSENTRY_SIGNING_KEYS_DIR"]
    for name in ("api", "integrator"):
        mounts = {m.split(":")[1]: m.split(":")[0] for m in found[name]["volumes"]}
        assert mounts.get(keys_dir) == "keys", f"{name} does not mount the keys volume"
    for name, service in found.items():
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name} uses an undeclared volume {source}"
            else:
                assert (ROOT / source).exists(), f"{name} mounts {source}, which does not exist"


def test_prometheus_scrapes_what_the_services_expose(compose: dict[str, Any]) -> None:
    found = services(compose)
    config = load_mapping(DEPLOY / "prometheus" / "prometheus.yml")
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"][0]
        for job in config["scrape_configs"]
    }
    assert targets["consentry-api"] == "api:8000"
    for job, service in (("consentry-relay", "relay"), ("consentry-commands", "commands")):
        host, port = targets[job].split(":")
        command = found[service]["command"]
        assert host == service
        assert command[command.index("--metrics-port") + 1] == port


def _compose_binary() -> list[str] | None:
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    return [standalone] if standalone else None


def test_docker_compose_config_accepts_it() -> None:
    """`docker compose config`, where the Compose plugin (or binary) is installed."""
    binary = _compose_binary()
    if binary is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed here")
    env = {**os.environ, **TEST_VARIABLES}
    done = subprocess.run(
        [*binary, "-f", str(COMPOSE), "--profile", "monitoring", "config", "--quiet"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    env.pop("POSTGRES_PASSWORD")
    missing = subprocess.run(
        [*binary, "-f", str(COMPOSE), "config", "--quiet"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode != 0 and "POSTGRES_PASSWORD" in missing.stderr
