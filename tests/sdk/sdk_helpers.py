"""Constants and plain helpers shared by the live SDK suite (``tests/sdk``).

Imported explicitly by ``conftest.py`` and the test modules (``from sdk_helpers import ...``);
pytest's default ``prepend`` import mode puts ``tests/sdk`` on ``sys.path``, so this module is
imported exactly once per session and every module sees the same ``RUN_ID``.

Fixtures live in ``conftest.py``; this module holds only things tests call directly.
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import urlparse

from stacyvm import Client, SandboxInfo, StacyVMError
from stacyvm.streaming import StreamChunk

# One id per pytest session: every sandbox spawned by the suite carries TAG as metadata, and the
# session sweep in conftest.py destroys whatever still carries this run's id at the end.
RUN_ID = uuid.uuid4().hex[:8]
TAG = {"suite": "sdk-live", "run": RUN_ID}
PROVIDER = os.environ.get("STACYVM_TEST_PROVIDER") or None
# The image sent on spawns that do not name one. Unset, such spawns send the SDK's own default
# image, "alpine:latest" (the SDK always sends an image, so the server's defaults.image never
# applies). scripts/with-server.sh sets it for the oci run, whose offline image store holds only
# the locally built python:3.12 image.
IMAGE = os.environ.get("STACYVM_TEST_IMAGE") or None
SDK_DEFAULT_IMAGE = "alpine:latest"
# Keyword arguments for a direct ``spawn`` call that should use IMAGE (empty when unset).
IMAGE_KW = {"image": IMAGE} if IMAGE else {}
HOST_PASSWD = "/etc/passwd"

_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0,
                 "m": 60.0, "h": 3600.0}


def go_duration(text: str) -> float:
    """Parse a Go duration string (``1h30m``, ``12.3ms``, ``0s``) into seconds."""
    assert isinstance(text, str) and text, f"not a duration string: {text!r}"
    body, sign = text, 1.0
    if body[0] in "+-":
        sign, body = (-1.0 if body[0] == "-" else 1.0), body[1:]
    if body == "0":
        return 0.0
    total, pos = 0.0, 0
    for m in _DURATION_PART.finditer(body):
        assert m.start() == pos, f"not a Go duration: {text!r}"
        total += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        pos = m.end()
    assert pos == len(body) and pos > 0, f"not a Go duration: {text!r}"
    return sign * total


def utc_timestamp(text: str) -> datetime:
    """Parse an RFC 3339 UTC timestamp with a ``Z`` suffix (rest-api.md §1.4)."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d{1,9})?Z", text or "")
    assert m, f"not an RFC 3339 UTC timestamp ending in Z: {text!r}"
    base = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    return base + timedelta(seconds=float("0" + (m.group(2) or "")))


def info_of(client: Client, sandbox_id: str) -> SandboxInfo:
    """The list entry for one sandbox (the SDK exposes memory/vcpus/expiry only via list())."""
    matches = [s for s in client.list() if s.id == sandbox_id]
    assert len(matches) == 1, f"{sandbox_id} appears {len(matches)} times in client.list()"
    return matches[0]


def host_passwd() -> str:
    with open(HOST_PASSWD, encoding="utf-8", errors="replace") as fh:
        return fh.read()


def server_is_local(base_url: str) -> bool:
    return urlparse(base_url).hostname in ("127.0.0.1", "localhost", "::1")


def chunks_by_run(chunks: list[StreamChunk]) -> list[tuple[str, str]]:
    """Merge consecutive chunks of the same stream (chunk boundaries are not part of the contract)."""
    runs: list[tuple[str, str]] = []
    for c in chunks:
        if runs and runs[-1][0] == c.stream:
            runs[-1] = (c.stream, runs[-1][1] + c.data)
        else:
            runs.append((c.stream, c.data))
    return runs


def assert_stream_chunks_wellformed(chunks: list[StreamChunk]) -> None:
    for c in chunks:
        assert isinstance(c, StreamChunk)
        assert c.stream in ("stdout", "stderr"), c
        # An extra non-output line (e.g. an exit record) would surface as an empty stdout chunk.
        assert c.data != "", f"empty chunk (extra NDJSON line?): {c}"


def assert_api_error(excinfo, code: str) -> None:
    """Exactly StacyVMError (not a 404 / 5xx subclass) with the given UPPERCASE code."""
    exc = excinfo.value
    assert type(exc) is StacyVMError, f"expected plain StacyVMError, got {type(exc).__name__}: {exc}"
    assert exc.code == code, f"expected code {code}, got {exc.code!r}: {exc}"
    assert str(exc), "error message must not be empty"


def run_async(coro):
    """Run an async test body to completion (the suite does not use pytest-asyncio)."""
    return asyncio.run(coro)
