"""Static files of the pages (ui/static): compressed, with validators, from this server only.

`/banner.js` (api/banner.py) and everything under `/static/` (the pages' stylesheet and scripts,
the vendored Swagger UI and Redoc of /docs and /redoc) go out through `asset_response`:

- compressed with brotli when the client accepts it and the `brotli` module is installed
  (optional: `pip install brotli`), else gzip, else as is; each file is compressed once per
  process, on first use (banner.js: 16 KB, 5.9 KB gzipped, 5.1 KB with brotli);
- with a strong ETag per representation (`"<sha256>"`, `"<sha256>-gzip"`, `"<sha256>-br"`),
  `Vary: Accept-Encoding` and `Cache-Control: public, max-age=...`; `If-None-Match` with any
  of them (or `*`) is answered 304 with no body.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from types import ModuleType
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from consentry.domain.errors import NotFoundError

router = APIRouter(tags=["pages"])

MAX_AGE_SECONDS = 3600
COMPRESS_MIN_BYTES = 512
BROTLI_BEST_MAX_BYTES = 256 * 1024

MEDIA_TYPES = {
    ".js": "application/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}
COMPRESSIBLE = frozenset({".js", ".css", ".svg", ".txt"})
_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def _brotli() -> ModuleType | None:
    try:
        import brotli
    except ImportError:
        return None
    module: ModuleType = brotli
    return module


@dataclass(frozen=True, slots=True)
class Asset:
    """One file and its compressed forms: {content-coding: (bytes, etag)}; "" is identity."""

    media_type: str
    forms: Mapping[str, tuple[bytes, str]]


@lru_cache(maxsize=64)
def load_asset(path: str) -> Asset:
    """The file `path` (a/b.js) under ui/static; NotFoundError for anything else."""
    parts = path.split("/")
    suffix = "." + parts[-1].rsplit(".", 1)[-1] if "." in parts[-1] else ""
    if not all(_SEGMENT.match(p) for p in parts) or suffix not in MEDIA_TYPES:
        raise NotFoundError("no such file")
    entry = resources.files("consentry.ui").joinpath("static", *parts)
    if not entry.is_file():
        raise NotFoundError("no such file")
    data = entry.read_bytes()
    tag = hashlib.sha256(data).hexdigest()[:32]
    forms: dict[str, tuple[bytes, str]] = {"": (data, f'"{tag}"')}
    if suffix in COMPRESSIBLE and len(data) >= COMPRESS_MIN_BYTES:
        forms["gzip"] = (gzip.compress(data, compresslevel=9, mtime=0), f'"{tag}-gzip"')
        brotli = _brotli()
        if brotli is not None:
            # Best ratio for small files; past BROTLI_BEST_MAX_BYTES quality 11 costs seconds
            # (8 s for Swagger UI's 1.7 MB here), quality 9 half a second for 9% more bytes.
            quality = 11 if len(data) <= BROTLI_BEST_MAX_BYTES else 9
            forms["br"] = (brotli.compress(data, quality=quality), f'"{tag}-br"')
    return Asset(MEDIA_TYPES[suffix], forms)


def coding_weights(header: str | None) -> dict[str, float]:
    """{content-coding: q} of an Accept-Encoding header (`*` included; q=0 means "not this")."""
    weights: dict[str, float] = {}
    for item in (header or "").split(","):
        name, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if name.strip():
            weights[name.strip().lower()] = quality
    return weights


def _choose(asset: Asset, accept_encoding: str | None) -> str:
    weights = coding_weights(accept_encoding)
    for coding in ("br", "gzip"):
        if coding in asset.forms and weights.get(coding, weights.get("*", 0.0)) > 0:
            return coding
    return ""


def _matches(if_none_match: str, asset: Asset) -> bool:
    if if_none_match.strip() == "*":
        return True
    ours = {etag for _, etag in asset.forms.values()}
    return any(t.strip().removeprefix("W/") in ours for t in if_none_match.split(","))


def asset_response(
    request: Request,
    path: str,
    *,
    max_age: int = MAX_AGE_SECONDS,
    headers: Mapping[str, str] | None = None,
) -> Response:
    asset = load_asset(path)
    coding = _choose(asset, request.headers.get("accept-encoding"))
    body, etag = asset.forms[coding]
    out = {"Cache-Control": f"public, max-age={max_age}", "ETag": etag, **(headers or {})}
    if len(asset.forms) > 1:
        out["Vary"] = "Accept-Encoding"
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None and _matches(if_none_match, asset):
        return Response(status_code=304, headers=out)
    if coding:
        out["Content-Encoding"] = coding
    return Response(body, media_type=asset.media_type, headers=out)


@router.get("/static/{path:path}", include_in_schema=False)
def static_file(path: Annotated[str, Path(max_length=512)], request: Request) -> Response:
    return asset_response(request, path)
