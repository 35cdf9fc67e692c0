"""The reverse-proxy examples: what they must do for Consentry (forwarded headers, the body
limit, the trusted jurisdiction header, /metrics kept internal, the change feed unbuffered),
and `nginx -t` / `caddy validate` where those programs are installed."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from consentry.api.app import MAX_BODY_BYTES
from consentry.config import Settings
from tests.deploy.conftest import DEPLOY

NGINX = DEPLOY / "nginx" / "consentry.conf"
CADDY = DEPLOY / "caddy" / "Caddyfile"


def nginx_size(text: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([kKmM]?)", text).groups()  # type: ignore[union-attr]
    return int(number) * {"": 1, "k": 1024, "m": 1024 * 1024}[unit.lower()]


def test_nginx_does_what_consentry_needs() -> None:
    conf = NGINX.read_text(encoding="utf-8")
    size = re.search(r"client_max_body_size\s+(\S+);", conf)
    assert size and nginx_size(size.group(1)) == MAX_BODY_BYTES
    assert re.search(r"proxy_set_header X-Forwarded-For \$remote_addr;", conf)
    assert re.search(r"proxy_set_header X-Forwarded-Proto \$scheme;", conf)
    header = Settings().jurisdiction_header
    assert re.search(rf'proxy_set_header {re.escape(header)} "";', conf), "clear the client's"
    assert re.search(r"location = /metrics \{\s*return 404;", conf)
    feed = re.search(r"location /v1/changes \{(.*?)\}", conf, re.S)
    assert feed and "proxy_buffering off;" in feed.group(1)
    assert f"server 127.0.0.1:{Settings().port};" in conf
    assert "ssl_certificate " in conf and "return 301 https://" in conf


def test_caddy_does_what_consentry_needs() -> None:
    conf = CADDY.read_text(encoding="utf-8")
    assert re.search(r"max_size 1MiB", conf) and MAX_BODY_BYTES == 1024 * 1024
    assert f"header_up -{Settings().jurisdiction_header}" in conf
    assert "respond /metrics 404" in conf
    assert f"reverse_proxy 127.0.0.1:{Settings().port}" in conf
    assert "flush_interval -1" in conf


def self_signed(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "consent.example.com")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "fullchain.pem", folder / "privkey.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_nginx_accepts_the_example(tmp_path: Path) -> None:
    nginx = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None
    )
    if nginx is None:
        pytest.skip("nginx is not installed here")
    cert, key = self_signed(tmp_path)
    site = NGINX.read_text(encoding="utf-8")
    site = site.replace("/etc/ssl/consentry/fullchain.pem", str(cert))
    site = site.replace("/etc/ssl/consentry/privkey.pem", str(key))
    (tmp_path / "site.conf").write_text(site, encoding="utf-8")
    temp = "\n".join(
        f"  {kind}_temp_path {tmp_path / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path / 'nginx.pid'};\nerror_log {tmp_path / 'error.log'};\nevents {{}}\n"
        f"http {{\n  access_log off;\n{temp}\n  include {tmp_path / 'site.conf'};\n}}\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"),
         "-e", str(tmp_path / "error.log")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_caddy_accepts_the_example(tmp_path: Path) -> None:
    caddy = shutil.which("caddy")
    if caddy is None:
        pytest.skip("caddy is not installed here")
    done = subprocess.run(
        [caddy, "validate", "--config", str(CADDY), "--adapter", "caddyfile"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
