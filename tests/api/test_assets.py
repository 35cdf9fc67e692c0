"""Static files (api/assets.py): compressed, validated, and nothing outside ui/static."""

from __future__ import annotations

import gzip
from importlib import resources

import brotli
import pytest

from consentry.api.assets import coding_weights
from tests.conftest import ApiClient


def raw_get(api: ApiClient, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    with api.client.stream("GET", path, headers=headers) as r:
        return r.status_code, dict(r.headers), b"".join(r.iter_raw())


def static_bytes(*parts: str) -> bytes:
    return resources.files("consentry.ui").joinpath("static", *parts).read_bytes()


@pytest.mark.parametrize(
    "path",
    ["banner.js", "vendor/swagger-ui/swagger-ui-bundle.js", "vendor/redoc/redoc.standalone.js"],
)
def test_brotli_first_then_gzip_then_identity(api: ApiClient, path: str) -> None:
    url = "/banner.js" if path == "banner.js" else f"/static/{path}"
    data = static_bytes(*path.split("/"))
    status, headers, body = raw_get(api, url, **{"Accept-Encoding": "gzip, deflate, br"})
    assert status == 200 and headers["content-encoding"] == "br"
    assert brotli.decompress(body) == data and headers["etag"].endswith('-br"')
    status, headers, body = raw_get(api, url, **{"Accept-Encoding": "gzip"})
    assert headers["content-encoding"] == "gzip" and gzip.decompress(body) == data
    status, headers, body = raw_get(api, url, **{"Accept-Encoding": "br;q=0, *;q=0.5"})
    assert headers["content-encoding"] == "gzip"
    status, headers, body = raw_get(api, url, **{"Accept-Encoding": "identity"})
    assert "content-encoding" not in headers and body == data
    for validator in (headers["etag"], '"x", W/' + headers["etag"]):
        status, _, body = raw_get(api, url, **{"If-None-Match": validator})
        assert status == 304 and body == b""


def test_pages_files_have_their_types(api: ApiClient) -> None:
    for path, media in [
        ("/static/pages.css", "text/css"),
        ("/static/demo.js", "application/javascript"),
        ("/static/vendor/swagger-ui/swagger-ui.css", "text/css"),
        ("/static/vendor/redoc/LICENSE.txt", "text/plain"),
    ]:
        r = api.client.get(path)
        assert r.status_code == 200 and r.headers["content-type"].startswith(media), path
        assert r.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "path",
    [
        "/static/../pages.py",
        "/static/%2e%2e/pages.py",
        "/static/..%2fpages.py",
        "/static/templates/base.html",
        "/static/vendor/README.md",
        "/static/.hidden.js",
        "/static/nope.js",
        "/static/vendor",
        "/static/a//b.js",
    ],
)
def test_nothing_else_is_served(api: ApiClient, path: str) -> None:
    r = api.client.get(path)
    assert r.status_code == 404, (path, r.status_code)
    assert r.json()["error"]["code"] == "not_found"


def test_accept_encoding_is_read_with_its_weights() -> None:
    assert coding_weights("gzip, br;q=0.8") == {"gzip": 1.0, "br": 0.8}
    assert coding_weights("gzip;q=0, BR") == {"gzip": 0.0, "br": 1.0}
    assert coding_weights("gzip;q=zero") == {"gzip": 0.0}
    assert coding_weights(None) == {} == coding_weights("")
