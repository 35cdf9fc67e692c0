"""/demo never changes a real installation: off by default, on a tenant of its own, and never on
a tenant that holds data."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from consentry.api.app import create_app
from consentry.config import Settings
from consentry.domain.errors import ConflictError
from consentry.domain.purposes import LegalBasis, Purpose
from consentry.services import Services
from consentry.storage import SqlStore
from consentry.storage.collection import CollectionStore, SettingsKind
from consentry.ui.pages import DEMO_TENANT, ensure_demo
from tests.api.test_errors import assert_error
from tests.conftest import ApiClient


@pytest.fixture
def demo_on(store: SqlStore, settings: Settings) -> Iterator[tuple[TestClient, Services]]:
    configured = Settings.model_validate({**settings.model_dump(), "demo": True})
    services = Services.build(configured, store)
    with TestClient(create_app(configured, services)) as client:
        yield client, services


def test_off_by_default(api: ApiClient) -> None:
    assert Settings.model_fields["demo"].default is False
    api.purpose("email")  # a real installation: the default tenant has data
    r = api.client.get("/demo")
    assert_error(r, 404, "not_found", "consentry serve --demo")
    collection = CollectionStore(api.services.store)
    assert collection.latest("default", SettingsKind.BANNER) is None
    assert set(api.services.catalog.purposes("default")) == {"email"}
    assert not api.services.store.tenant_exists(DEMO_TENANT)


def test_on_it_sets_up_its_own_tenant_and_leaves_the_others(
    demo_on: tuple[TestClient, Services],
) -> None:
    client, services = demo_on
    services.recorder.add_purpose("default", _purpose("email"))
    r = client.get("/demo")
    assert r.status_code == 200 and f'data-site="{DEMO_TENANT}"' in r.text
    collection = CollectionStore(services.store)
    assert collection.latest("default", SettingsKind.BANNER) is None
    assert set(services.catalog.purposes("default")) == {"email"}
    assert "analytics" in services.catalog.purposes(DEMO_TENANT)
    assert client.get(f"/v1/banner/{DEMO_TENANT}/config").status_code == 200
    assert client.get("/v1/banner/default/config").status_code == 404
    assert client.get("/demo").status_code == 200  # set up once; nothing written again


def test_refuses_a_tenant_that_holds_data(demo_on: tuple[TestClient, Services]) -> None:
    client, services = demo_on
    services.store.ensure_tenant(DEMO_TENANT)
    services.recorder.add_purpose(DEMO_TENANT, _purpose("newsletter"))
    r = client.get("/demo")
    assert_error(r, 409, "conflict", "already has purposes or events")
    collection = CollectionStore(services.store)
    assert collection.latest(DEMO_TENANT, SettingsKind.BANNER) is None
    assert set(services.catalog.purposes(DEMO_TENANT)) == {"newsletter"}
    with pytest.raises(ConflictError):
        ensure_demo(services, collection, DEMO_TENANT)


def _purpose(pid: str) -> Purpose:
    return Purpose(pid, pid.title(), LegalBasis.CONSENT)
