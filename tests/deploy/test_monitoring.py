"""The alert rules and the dashboard name only metrics and labels the running services export.

`consentry serve` and `consentry relay --metrics-port` are started as compose.yaml runs them (the
relay in its own process, against the Kafka-protocol test broker), a consent is recorded and
decided, and both /metrics are scraped: every metric in deploy/prometheus/consentry-alerts.yml and
deploy/grafana/dashboards/consentry.json must be there. promtool checks the rules when installed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from consentry.api.metrics import Metrics
from consentry.propagation.lag import LagMetrics
from tests.deploy.conftest import (
    DEPLOY,
    clean_env,
    consentry_exe,
    free_port,
    load_yaml,
    stop,
    wait_http,
)
from tests.propagation.conftest import Broker, broker  # noqa: F401  (the session's broker)

RULES = DEPLOY / "prometheus" / "consentry-alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "consentry.json"
#: Series Prometheus makes itself, and labels it adds to every series it scrapes.
PROMETHEUS_OWN = {"up"}
TARGET_LABELS = {"job", "instance"}
_METRIC = re.compile(r"\b(consentry_[a-z0-9_]+)\b(\{[^}]*\})?")
_BY = re.compile(r"\bby\s*\(([^)]*)\)")
_LABEL = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
_DURATION = re.compile(r"^\d+[smhdwy]$")


def rules() -> list[dict[str, Any]]:
    data = load_yaml(RULES)
    return [rule for group in data["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    data = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [t["expr"] for p in data["panels"] for t in p.get("targets", [])]


def all_exprs() -> list[str]:
    return [r["expr"] for r in rules()] + dashboard_exprs()


# --------------------------------------------------------------------------- structure


def test_the_rules_file_is_well_formed() -> None:
    data = load_yaml(RULES)
    assert set(data) == {"groups"}
    names = []
    for group in data["groups"]:
        assert set(group) <= {"name", "interval", "rules"} and group["rules"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
            names.append(rule["alert"])
            assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", rule["alert"])
            assert isinstance(rule["expr"], str) and rule["expr"].strip()
            assert _DURATION.match(str(rule.get("for", "0m"))), rule["alert"]
            assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
            assert rule["annotations"]["summary"] and rule["annotations"]["description"]
            assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]
    assert len(names) == len(set(names)), "alert names repeat"


def test_promtool_accepts_the_rules() -> None:
    """promtool (Prometheus's own checker), where it is installed."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed here (Debian: the prometheus package)")
    done = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_dashboard_is_well_formed() -> None:
    data = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert data["uid"] and data["title"] and data["schemaVersion"] >= 36
    variables = {v["name"]: v for v in data["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    ids = [p["id"] for p in data["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    used = set()
    for panel in data["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            used.update(re.findall(r"\$(\w+)", target["expr"]))
    assert used - {"__rate_interval"} <= set(variables), "an expression uses an unknown variable"


# --------------------------------------------------------------------------- the real metrics


@pytest.fixture(scope="module")
def scraped(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:  # noqa: F811
    """/metrics of `consentry serve` and of `consentry relay --metrics-port`, after a consent
    was recorded and decided and the relay published it."""
    folder = tmp_path_factory.mktemp("monitoring")
    suffix = uuid.uuid4().hex[:8]
    env = clean_env(
        CONSENTRY_DATABASE_URL=f"sqlite:///{folder / 'consentry.db'}",
        CONSENTRY_SIGNING_KEYS_DIR=str(folder / "keys"),
        CONSENTRY_KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap,
        CONSENTRY_KAFKA_EVENTS_TOPIC=f"events-{suffix}",
        CONSENTRY_KAFKA_COMMANDS_TOPIC=f"commands-{suffix}",
        CONSENTRY_KAFKA_DEAD_LETTER_TOPIC=f"dlq-{suffix}",
        CONSENTRY_KAFKA_TOPIC_PARTITIONS="3",
        CONSENTRY_RELAY_POLL_INTERVAL_SECONDS="0.05",
        CONSENTRY_RELAY_IN_SERVE="false",
    )
    migrated = subprocess.run(
        [*consentry_exe(), "migrate"], cwd=folder, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert migrated.returncode == 0, migrated.stderr
    key = migrated.stdout.strip().splitlines()[-1]
    assert key.startswith("csk_")
    api_port, relay_port = free_port(), free_port()
    api = subprocess.Popen(
        [*consentry_exe(), "serve", "--port", str(api_port)], cwd=folder, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    relay = subprocess.Popen(
        [*consentry_exe(), "relay", "--metrics-port", str(relay_port)], cwd=folder, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{api_port}"
        wait_http(f"{base}/healthz", api)
        wait_http(f"http://127.0.0.1:{relay_port}/metrics", relay)
        auth = {"Authorization": f"Bearer {key}"}
        purpose = {"id": "email", "name": "Email", "legal_basis": "consent"}
        assert httpx.post(f"{base}/v1/purposes", json=purpose, headers=auth).status_code == 201
        body = {"subject": "u-1", "events": [{"purpose": "email", "action": "given"}]}
        assert httpx.post(f"{base}/v1/consents", json=body, headers=auth).status_code == 201
        decided = httpx.get(f"{base}/v1/decisions?subject=u-1&purpose=email", headers=auth)
        assert decided.json()["permitted"] is True
        for _ in range(300):  # the relay publishes the event (its lag histogram gets a sample)
            text = httpx.get(f"http://127.0.0.1:{relay_port}/metrics").text
            if re.search(r"^consentry_relay_published_events_total 1\.0$", text, re.M):
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the relay did not publish the event:\n" + text)
        yield httpx.get(f"{base}/metrics").text + "\n" + text
    finally:
        stop(api)
        stop(relay)


def exported(text: str) -> dict[str, set[str]]:
    """Every series name the scrape can answer for, with the labels seen on its samples."""
    names: dict[str, set[str]] = {}
    suffixes = {
        "counter": ("_total", "_created"),
        "gauge": ("",),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("", "_sum", "_count", "_created"),
    }
    for family in text_string_to_metric_families(text):
        for suffix in suffixes.get(family.type, ("",)):
            names.setdefault(family.name + suffix, set())
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    return names


def in_process_collectors() -> dict[str, MetricWrapperBase]:
    """The metric objects of the API and of propagation, by exported family name."""
    found: dict[str, MetricWrapperBase] = {}
    for owner in (Metrics(), LagMetrics()):
        for value in vars(owner).values():
            if isinstance(value, MetricWrapperBase):
                for family in value.describe():
                    found[family.name] = value
    return found


def label_exists(metric: str, label: str, names: dict[str, set[str]]) -> bool:
    if label in TARGET_LABELS or label in names.get(metric, set()):
        return True
    if label == "le" and metric.endswith("_bucket"):
        return True
    family = re.sub(r"_(total|created|bucket|sum|count)$", "", metric)
    collector = in_process_collectors().get(family)
    if collector is None:
        return False
    try:  # no samples scraped (no consumer ran): its only label must be this one
        collector.labels(**{label: "x"})
    except (ValueError, TypeError):
        return False
    return True


def test_every_metric_in_the_rules_and_the_dashboard_is_exported(scraped: str) -> None:
    names = exported(scraped)
    missing = sorted(
        {m for expr in all_exprs() for m, _ in _METRIC.findall(expr) if m not in names}
    )
    assert not missing, f"not exported by serve or relay: {missing}"
    assert "up" in "".join(r["expr"] for r in rules())  # the down alerts use Prometheus's own


def test_every_label_they_select_on_exists(scraped: str) -> None:
    names = exported(scraped)
    problems = []
    for expr in all_exprs():
        metrics = [(m, sel) for m, sel in _METRIC.findall(expr)]
        for metric, selector in metrics:
            for label in _LABEL.findall(selector):
                if not label_exists(metric, label, names):
                    problems.append(f"{metric} has no label {label!r}: {expr}")
        for group in _BY.findall(expr):
            for label in [g.strip() for g in group.split(",") if g.strip()]:
                if not any(label_exists(m, label, names) for m, _ in metrics):
                    problems.append(f"by ({label}) names no label of {expr}")
    assert not problems, problems


def test_the_routes_they_name_are_routes_of_the_api(scraped: str) -> None:
    routes = set(re.findall(r'route="([^"]+)"', scraped))
    assert "/v1/decisions" in routes and "/v1/consents" in routes
    for expr in all_exprs():
        for route in re.findall(r'route="([^"]+)"', expr):
            assert route in routes, f"{route} is not a route the API reports: {expr}"


def test_a_misspelt_metric_would_be_caught(scraped: str) -> None:
    """The check above is not vacuous: a name one letter off is not in the scrape."""
    names = exported(scraped)
    assert "consentry_relay_backlog_seconds" in names
    assert "consentry_relay_backlog_second" not in names
    assert not label_exists("consentry_http_requests_total", "stauts", names)
    assert label_exists("consentry_propagation_commit_to_apply_seconds_bucket", "group", names)


