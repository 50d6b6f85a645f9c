"""Fixtures for the live acceptance suite: the published ``stacyvm==0.1.1`` Python SDK against a
running server.

The server is started by the caller (see ``scripts/sdk-live-test.sh``) and found through
``STACYVM_URL``. The suite is provider-neutral and runs in ``make test`` against a server whose
default provider is ``mock`` (sandboxes are temp directories on the same host) and again against
one whose default provider is ``oci`` (real containers; see ``scripts/with-server.sh``).
Optional: ``STACYVM_TEST_PROVIDER`` forces the provider named on every spawn;
``STACYVM_TEST_IMAGE`` is the image of spawns that name none (else the SDK's ``alpine:latest``).

Wire contract: /work/shared/spec/sdk-compat.md and rest-api.md. Every sandbox a test spawns is
destroyed by the ``spawn`` fixture's teardown (or by the test itself when that is the point);
the session-scoped ``_sweep_leftovers`` fixture destroys anything this run tagged and missed.
Templates created through ``template_name`` are deleted at its teardown.

Plain helpers and constants (``TAG``, ``PROVIDER``, ``go_duration``, ``run_async``...) are in
``sdk_helpers.py``; the tests are split by area into the ``test_*.py`` modules next to this file.
"""

from __future__ import annotations

import os
import uuid

import httpx
import pytest

from sdk_helpers import IMAGE, PROVIDER, RUN_ID, TAG
from stacyvm import Client, Sandbox, SandboxNotFound, StacyVMError


@pytest.fixture(scope="session")
def base_url() -> str:
    url = os.environ.get("STACYVM_URL", "").strip()
    if not url:
        pytest.exit("STACYVM_URL is not set (e.g. http://127.0.0.1:7423); start the server first",
                    returncode=2)
    try:
        httpx.get(url.rstrip("/") + "/api/v1/health", timeout=5.0)
    except httpx.HTTPError as exc:
        pytest.exit(f"cannot reach the StacyVM server at STACYVM_URL={url}: {exc}", returncode=2)
    return url.rstrip("/")


@pytest.fixture(scope="session", autouse=True)
def _sweep_leftovers(request):
    """Safety net: destroy any sandbox this run tagged and a test failed to clean up."""
    yield
    url = os.environ.get("STACYVM_URL", "").strip()
    if not url or request.config.option.collectonly:
        return
    try:
        with Client(url, timeout=30.0) as c:
            for s in c.list():
                if (s.metadata or {}).get("run") == RUN_ID:
                    try:
                        c.get(s.id).destroy()
                    except StacyVMError:
                        pass
    except Exception:
        pass


@pytest.fixture
def client(base_url):
    with Client(base_url, timeout=60.0) as c:
        yield c


@pytest.fixture
def spawn(client):
    """``spawn(**kw)`` → Sandbox, tagged with this run's metadata and destroyed at teardown.

    Without ``image``, it spawns ``STACYVM_TEST_IMAGE`` when set (else the SDK default)."""
    made: list[Sandbox] = []

    def _spawn(**kw) -> Sandbox:
        if PROVIDER and "provider" not in kw:
            kw["provider"] = PROVIDER
        if IMAGE and "image" not in kw:
            kw["image"] = IMAGE
        kw["metadata"] = {**TAG, **(kw.get("metadata") or {})}
        sb = client.spawn(**kw)
        made.append(sb)
        return sb

    _spawn.track = made.append  # for sandboxes created another way (templates)
    yield _spawn
    for sb in made:
        try:
            sb.destroy()
        except SandboxNotFound:
            pass


@pytest.fixture
def sb(spawn) -> Sandbox:
    return spawn()


@pytest.fixture
def template_name(client):
    """A unique template name for this run; the template is deleted at teardown if it exists."""
    name = f"sdk-live-{RUN_ID}-{uuid.uuid4().hex[:6]}"
    yield name
    try:
        client.templates.delete(name)
    except SandboxNotFound:
        pass
