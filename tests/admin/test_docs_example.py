"""docs/admin.md's "Adding a page" example, run as written: the module and its template."""

from __future__ import annotations

import re
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
from jinja2 import ChoiceLoader, DictLoader

from consentry.api import admin
from consentry.api.admin.console import NAV
from consentry.services import Services
from consentry.storage.base import Role
from consentry.ui.admin import environment
from tests.admin.conftest import Console

DOC = (Path(__file__).resolve().parents[2] / "docs" / "admin.md").read_text(encoding="utf-8")


@pytest.fixture
def documented_page(monkeypatch: pytest.MonkeyPatch) -> Iterator[types.ModuleType]:
    """The doc's module added to the console's pages, and its template to the templates."""
    code = re.search(r"```python\n(# src/consentry/api/admin/designer.py.*?)```", DOC, re.S)
    html = re.search(r"```html\n(.*?)```", DOC, re.S)
    assert code and html
    module = types.ModuleType("designer")
    exec(compile(code.group(1), "docs/admin.md", "exec"), module.__dict__)
    monkeypatch.setattr(admin, "PAGES", [*admin.PAGES, module])
    env = environment()
    templates = ChoiceLoader([DictLoader({"admin/designer.html": html.group(1)}), env.loader])
    monkeypatch.setattr(env, "loader", templates)
    try:
        yield module
    finally:
        NAV.items.pop("designer", None)  # the module registered it when it ran


def test_the_documented_page_works(
    services: Services, documented_page: types.ModuleType, console: Console
) -> None:
    console.sign_in(console.key(Role.ADMIN))
    page = console.page("/admin/designer")
    assert "0 version(s) published" in page.text
    assert 'href="/admin/designer" aria-current="page"' in page.text
    assert console.post("/admin/designer", {"colour": "red"}).status_code == 422
    assert console.post("/admin/designer", {"colour": "#123456"}).status_code == 303
    assert "Published version 1." in console.page("/admin/designer").text
    console.client.cookies.clear()
    console.sign_in(console.key(Role.AUDITOR))
    page = console.page("/admin/designer")
    assert "1 version(s) published" in page.text
    assert 'action="/admin/designer"' not in page.text
    assert console.post("/admin/designer", {"colour": "#000000"}).status_code == 403
    assert documented_page.DESIGNS == ["#123456"]
