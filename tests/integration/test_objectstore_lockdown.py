"""The object store lets local processes in only through the S3 gateway.

The local SeaweedFS runs with the JWT signing keys and gRPC certificate that ``stack.py up``
makes under ``.stack/seaweedfs/``: the filer (18888) and volume (18080) HTTP ports refuse
requests without a token signed by those keys, every gRPC port wants the stack's client
certificate, and S3 with the configured access keys (presigned URLs included) works as before.
The tokens and certificate the tests present themselves are read from the stack's files, to
show that it is the missing credential, not the path, that gets a request refused.

The stack is the one ``load_settings()`` describes, so with ``CONVEYOR_STACK_DIR`` and
``CONVEYOR_STACK_PORT_OFFSET`` set this checks a scratch stack (the ``stack`` fixture's
``stack.py status`` inherits them).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import socket
import ssl
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from minio import Minio

from deploy.stack.config import Settings, load_settings
from deploy.stack.seaweedfs import SeaweedFS
from shared.endpoints import HOST

BUCKET = "conveyor-raw"
UNAUTHORIZED = {401, 403}
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes(9)  # + an empty SETTINGS frame


@dataclass(frozen=True)
class Blob:
    """An object written through S3 for one test, and where SeaweedFS keeps it."""

    key: str
    data: bytes

    @property
    def filer_path(self) -> str:
        return f"/buckets/{BUCKET}/{self.key}"


@pytest.fixture(scope="module")
def settings(stack: None) -> Settings:
    return load_settings()


@pytest.fixture(scope="module")
def seaweedfs(settings: Settings) -> SeaweedFS:
    return SeaweedFS(settings)


@pytest.fixture(scope="module")
def s3(seaweedfs: SeaweedFS) -> Minio:
    return seaweedfs.s3_client()


@pytest.fixture(scope="module")
def keys(seaweedfs: SeaweedFS) -> dict[str, str]:
    """The stack's JWT signing keys, as stack.py stored them."""
    stored: dict[str, str] = json.loads(seaweedfs.keys_file.read_text())
    return stored


@pytest.fixture
def blob(s3: Minio) -> Iterator[Blob]:
    blob = Blob(f"lockdown-test/{uuid.uuid4().hex}.bin", uuid.uuid4().bytes * 64)
    s3.put_object(BUCKET, blob.key, io.BytesIO(blob.data), len(blob.data))
    yield blob
    s3.remove_object(BUCKET, blob.key)


def url(port: int, path: str) -> str:
    return f"http://{HOST}:{port}{path}"


def signed(key: str, **claims: Any) -> dict[str, str]:
    """An Authorization header with an HS256 JWT, as SeaweedFS's own components make them."""

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps({"exp": int(time.time()) + 30, **claims}).encode())
    signature = hmac.new(key.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return {"Authorization": f"Bearer {head}.{body}.{b64(signature)}"}


def file_id(settings: Settings, keys: dict[str, str], blob: Blob) -> str:
    """The volume file id of the blob's first chunk (from the filer, with a signed request)."""
    response = httpx.get(
        url(settings.ports.filer, blob.filer_path),
        params={"metadata": "true"},
        headers=signed(keys["FILER_READ_KEY"]),
    )
    assert response.status_code == 200, response.text
    chunks = response.json()["chunks"]
    return str(chunks[0]["file_id"])


# ------------------------------------------------------------------------- the way in: S3


def test_s3_with_the_configured_keys_still_writes_and_reads(s3: Minio, blob: Blob) -> None:
    with s3.get_object(BUCKET, blob.key) as response:
        assert response.read() == blob.data


def test_presigned_urls_still_work_and_still_expire(s3: Minio, blob: Blob) -> None:
    link = s3.presigned_get_object(BUCKET, blob.key, expires=timedelta(seconds=2))
    fresh = httpx.get(link)
    assert fresh.status_code == 200
    assert fresh.content == blob.data
    time.sleep(3)
    assert httpx.get(link).status_code == 403


def test_s3_without_keys_is_refused(settings: Settings, blob: Blob) -> None:
    response = httpx.get(url(settings.ports.s3, f"/{BUCKET}/{blob.key}"))
    assert response.status_code == 403
    assert blob.data not in response.content


# ------------------------------------------------------------------- the filer's HTTP API


@pytest.mark.parametrize(
    ("method", "folder", "params"),
    [
        ("GET", False, {}),  # the blob
        ("GET", False, {"metadata": "true"}),  # its chunk list, volume file ids included
        ("GET", True, {}),  # the listing of its folder
        ("PUT", False, {}),  # overwrite
        ("POST", True, {}),  # upload into its folder
        ("DELETE", False, {}),
    ],
)
def test_the_filer_refuses_unsigned_requests(
    settings: Settings, s3: Minio, blob: Blob, method: str, folder: bool, params: dict[str, str]
) -> None:
    path = blob.filer_path.rsplit("/", 1)[0] + "/" if folder else blob.filer_path
    response = httpx.request(
        method, url(settings.ports.filer, path), params=params, content=b"x" * 10
    )
    assert response.status_code in UNAUTHORIZED, (response.status_code, response.text[:200])
    assert blob.data not in response.content
    with s3.get_object(BUCKET, blob.key) as untouched:
        assert untouched.read() == blob.data


def test_the_filer_refuses_a_token_signed_with_another_key(settings: Settings, blob: Blob) -> None:
    response = httpx.get(
        url(settings.ports.filer, blob.filer_path), headers=signed("not-the-stack-key")
    )
    assert response.status_code in UNAUTHORIZED


def test_the_filer_serves_a_request_signed_with_the_stacks_key(
    settings: Settings, keys: dict[str, str], blob: Blob
) -> None:
    response = httpx.get(
        url(settings.ports.filer, blob.filer_path), headers=signed(keys["FILER_READ_KEY"])
    )
    assert response.status_code == 200
    assert response.content == blob.data


# -------------------------------------------------------------------- the volume server


def test_the_volume_server_refuses_an_unsigned_read_by_file_id(
    settings: Settings, keys: dict[str, str], blob: Blob
) -> None:
    fid = file_id(settings, keys, blob)
    lookup = httpx.get(url(settings.ports.master, "/dir/lookup"), params={"fileId": fid})
    assert lookup.status_code == 200, lookup.text
    volume = lookup.json()["locations"][0]["url"]
    assert volume == f"{HOST}:{settings.ports.volume}"

    anonymous = httpx.get(f"http://{volume}/{fid}")
    assert anonymous.status_code in UNAUTHORIZED
    assert blob.data not in anonymous.content
    wrong_key = httpx.get(f"http://{volume}/{fid}", headers=signed("nope", fid=fid))
    assert wrong_key.status_code in UNAUTHORIZED

    with_token = httpx.get(
        f"http://{volume}/{fid}", headers=signed(keys["VOLUME_READ_KEY"], fid=fid)
    )
    assert with_token.status_code == 200
    assert with_token.content == blob.data


def test_the_volume_server_refuses_an_unsigned_write(settings: Settings) -> None:
    assigned = httpx.get(url(settings.ports.master, "/dir/assign"))
    assert assigned.status_code == 200, assigned.text
    fid = assigned.json()["fid"]
    response = httpx.post(
        url(settings.ports.volume, f"/{fid}"), files={"file": ("x.bin", b"not allowed")}
    )
    assert response.status_code in UNAUTHORIZED


# ------------------------------------------------------------------------- gRPC ports


def grpc_handshake(port: int, tls: Path, *, certificate: bool) -> bytes:
    """Open TLS to a gRPC port (with or without the stack's client certificate), send the
    HTTP/2 preface and return the server's first bytes; raises ssl.SSLError when refused."""
    context = ssl.create_default_context(cafile=str(tls / "ca.crt"))
    context.check_hostname = False
    context.set_alpn_protocols(["h2"])
    if certificate:
        context.load_cert_chain(tls / "weed.crt", tls / "weed.key")
    with (
        socket.create_connection((HOST, port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=HOST) as conn,
    ):
        conn.sendall(HTTP2_PREFACE)
        return conn.recv(9)


@pytest.mark.parametrize("server", ["master", "volume", "filer", "s3"])
def test_grpc_ports_want_the_stacks_client_certificate(
    settings: Settings, seaweedfs: SeaweedFS, server: str
) -> None:
    port = getattr(settings.ports, server) + 10000
    with pytest.raises(ssl.SSLError, match="CERTIFICATE_REQUIRED"):
        grpc_handshake(port, seaweedfs.tls_dir, certificate=False)
    frame = grpc_handshake(port, seaweedfs.tls_dir, certificate=True)
    assert frame[3] == 0x4  # an HTTP/2 SETTINGS frame: the certificate gets in


# ----------------------------------------------------------------------------- secrets


def test_the_secrets_are_private_to_the_stacks_user(seaweedfs: SeaweedFS) -> None:
    secret_files = [
        seaweedfs.keys_file,
        seaweedfs.home / "security.toml",
        *sorted(seaweedfs.tls_dir.iterdir()),
    ]
    assert {path.name for path in secret_files} >= {"ca.crt", "weed.crt", "weed.key"}
    assert not (seaweedfs.tls_dir / "ca.key").exists()  # no further certificate can be signed
    for path in secret_files:
        assert path.stat().st_mode & 0o077 == 0, f"{path} is readable by others"
    assert seaweedfs.tls_dir.stat().st_mode & 0o077 == 0
