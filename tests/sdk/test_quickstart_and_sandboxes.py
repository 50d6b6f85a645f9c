"""Live SDK suite: the README quick start, the installed package itself, and the sandbox
lifecycle through ``Client``.

Covers spawn (ids, provider, resources, metadata, TTL), get, list (contents and order), destroy
(including idempotence and use after destroy), the ``with`` context manager, ``extend_ttl``,
the ``X-User-ID`` header, ``prune`` and the spawn error codes. Fixtures are in ``conftest.py``.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone

import pytest

import stacyvm
from sdk_helpers import IMAGE_KW, PROVIDER, RUN_ID, TAG, assert_api_error, info_of, utc_timestamp
from stacyvm import Client, ProviderError, Sandbox, SandboxInfo, SandboxNotFound, StacyVMError


# --------------------------------------------------------------------------------------------
# README quick start and the installed package
# --------------------------------------------------------------------------------------------


def test_readme_quick_start(base_url):
    # The seed README's 7 lines, verbatim apart from the URL and the asserts.
    client = Client(base_url)
    try:
        sandbox = client.spawn(image="python:3.12")
        try:
            result = sandbox.exec('python3 -c "print(\'hello from my own computer\')"')
            assert result.stdout == "hello from my own computer\n"
            assert result.exit_code == 0
            assert result.stderr == ""
        finally:
            sandbox.destroy()
        with pytest.raises(SandboxNotFound):
            client.get(sandbox.id)
    finally:
        client.close()

def test_sdk_package_facts():
    assert stacyvm.__version__ == "0.1.0"  # the 0.1.1 wheel still says 0.1.0
    assert not hasattr(stacyvm, "StreamChunk")
    assert not hasattr(stacyvm, "TemplateManager")
    assert SandboxNotFound("x").code == "NOT_FOUND"
    assert issubclass(ProviderError, StacyVMError)


# --------------------------------------------------------------------------------------------
# lifecycle: spawn, get, list, destroy, TTL, owner, prune
# --------------------------------------------------------------------------------------------


def test_spawn_returns_running_sandbox_with_sb_id(client, spawn):
    sandbox = spawn(image="python:3.12")
    assert isinstance(sandbox, Sandbox)
    assert re.fullmatch(r"sb-[0-9a-f]{8}", sandbox.id), sandbox.id
    assert sandbox.state == "running"
    assert sandbox.image == "python:3.12"
    assert sandbox.provider, "spawn response must name the provider"
    if PROVIDER:
        assert sandbox.provider == PROVIDER


def test_spawned_ids_are_unique(spawn):
    ids = {spawn().id for _ in range(3)}
    assert len(ids) == 3


def test_spawn_uses_default_provider_from_providers_list(client, spawn):
    if PROVIDER:
        pytest.skip("STACYVM_TEST_PROVIDER overrides the default provider")
    defaults = [p for p in client.providers() if p.get("default") is True]
    assert len(defaults) == 1, f"exactly one provider must be marked default: {client.providers()}"
    assert spawn().provider == defaults[0]["name"]


def test_spawn_resources_metadata_and_ttl_are_recorded(client, spawn):
    sandbox = spawn(image="python:3.12", memory_mb=256, vcpus=2, ttl="10m",
                    metadata={"purpose": "resources"})
    info = info_of(client, sandbox.id)
    assert info.state == "running"
    assert info.image == "python:3.12"
    assert info.provider == sandbox.provider
    assert info.memory_mb == 256
    assert info.vcpus == 2
    assert info.metadata == {**TAG, "purpose": "resources"}
    created, expires = utc_timestamp(info.created_at), utc_timestamp(info.expires_at)
    assert abs((expires - created).total_seconds() - 600) < 5
    assert abs((datetime.now(timezone.utc) - created).total_seconds()) < 120


def test_get_returns_same_sandbox(client, sb):
    again = client.get(sb.id)
    assert isinstance(again, Sandbox)
    assert again.id == sb.id
    assert again.state == "running"
    assert again.image == sb.image
    assert again.provider == sb.provider
    # The re-attached handle is fully usable.
    assert again.exec("echo reattached").stdout == "reattached\n"


def test_list_contains_spawned_sandboxes(client, spawn):
    a, b = spawn(image="python:3.12"), spawn()
    listed = client.list()
    assert isinstance(listed, list)
    assert all(isinstance(s, SandboxInfo) for s in listed)
    by_id = {s.id: s for s in listed}
    assert a.id in by_id and b.id in by_id
    for s in listed:
        assert s.id.startswith("sb-")
        assert s.state and s.provider and s.image
    assert by_id[a.id].image == "python:3.12"
    assert by_id[a.id].state == "running"
    assert by_id[a.id].provider == a.provider


def test_list_is_newest_first(client, spawn):
    first = spawn()
    time.sleep(1.1)  # created_at may have whole-second precision
    second = spawn()
    ids = [s.id for s in client.list()]
    assert ids.index(second.id) < ids.index(first.id)


def test_destroy_removes_sandbox_everywhere(client, spawn):
    sandbox = spawn()
    sandbox.destroy()
    with pytest.raises(SandboxNotFound) as excinfo:
        client.get(sandbox.id)
    assert excinfo.value.code == "NOT_FOUND"
    assert sandbox.id in str(excinfo.value)
    assert sandbox.id not in [s.id for s in client.list()]
    with pytest.raises(SandboxNotFound):
        sandbox.exec("echo nope")
    with pytest.raises(SandboxNotFound):
        sandbox.read_file("/workspace/a.txt")
    with pytest.raises(SandboxNotFound):
        sandbox.write_file("/workspace/a.txt", "x")
    with pytest.raises(SandboxNotFound):
        sandbox.extend_ttl("1h")


def test_destroy_twice_is_fine(spawn):
    sandbox = spawn()
    sandbox.destroy()
    sandbox.destroy()  # a known-but-destroyed id stays 200 (idempotent)


def test_get_unknown_sandbox_is_not_found(client):
    with pytest.raises(SandboxNotFound) as excinfo:
        client.get("sb-nonexistent")
    exc = excinfo.value
    assert isinstance(exc, StacyVMError)
    assert exc.code == "NOT_FOUND"
    # The SDK stores the server's message in .sandbox_id; it should name the id.
    assert "sb-nonexistent" in exc.sandbox_id


def test_unknown_ids_of_any_shape_are_not_found(client):
    for sid in ("sb-00000000", "sb-nonexistent", "not-a-sandbox-id"):
        with pytest.raises(SandboxNotFound):
            client.get(sid)


def test_context_manager_destroys_on_exit(client, spawn):
    with spawn() as sandbox:
        assert sandbox.exec("echo inside").stdout == "inside\n"
        sid = sandbox.id
    with pytest.raises(SandboxNotFound):
        client.get(sid)


def test_context_manager_destroys_even_when_body_raises(client, spawn):
    sid = None
    with pytest.raises(RuntimeError, match="boom"):
        with spawn() as sandbox:
            sid = sandbox.id
            raise RuntimeError("boom")
    with pytest.raises(SandboxNotFound):
        client.get(sid)


def test_extend_ttl_moves_expiry_from_now(client, spawn):
    sandbox = spawn(ttl="5m")
    before = utc_timestamp(info_of(client, sandbox.id).expires_at)
    assert sandbox.extend_ttl("2h") is None
    assert sandbox.state == "running"  # info refreshed by the SDK's follow-up GET
    after = utc_timestamp(info_of(client, sandbox.id).expires_at)
    assert after > before
    expected = datetime.now(timezone.utc) + timedelta(hours=2)
    assert abs((after - expected).total_seconds()) < 60
    sandbox.extend_ttl()  # SDK default "30m": counted from now, so the expiry moves back
    again = utc_timestamp(info_of(client, sandbox.id).expires_at)
    assert abs((again - (datetime.now(timezone.utc) + timedelta(minutes=30))).total_seconds()) < 60


def test_extend_ttl_rejects_bad_and_oversized_values(sb):
    with pytest.raises(StacyVMError) as excinfo:
        sb.extend_ttl("banana")
    assert_api_error(excinfo, "BAD_REQUEST")
    with pytest.raises(StacyVMError) as excinfo:
        sb.extend_ttl("48h")  # above the default max_ttl of 24h
    assert_api_error(excinfo, "RESOURCE_LIMIT")


def test_spawn_unhappy_paths(client):
    with pytest.raises(StacyVMError) as excinfo:
        client.spawn(ttl="banana", metadata=TAG)
    assert_api_error(excinfo, "BAD_REQUEST")
    with pytest.raises(StacyVMError) as excinfo:
        client.spawn(ttl="48h", metadata=TAG)  # default max_ttl is 24h
    assert_api_error(excinfo, "RESOURCE_LIMIT")
    with pytest.raises(StacyVMError) as excinfo:
        client.spawn(owner_id="bad/owner", metadata=TAG)
    assert_api_error(excinfo, "BAD_REQUEST")
    with pytest.raises(SandboxNotFound):  # unknown provider is a 404
        client.spawn(provider="no-such-provider", metadata=TAG, **IMAGE_KW)


def test_invalid_user_id_header_is_rejected(base_url):
    with Client(base_url, user_id="has space") as c:
        with pytest.raises(StacyVMError) as excinfo:
            c.spawn(metadata=TAG)
    assert_api_error(excinfo, "BAD_REQUEST")


def test_valid_user_id_header_spawns(base_url):
    with Client(base_url, user_id=f"alice-{RUN_ID}@example.com") as c:
        with c.spawn(metadata=TAG, **IMAGE_KW) as sandbox:
            assert sandbox.state == "running"
            assert sandbox.exec("echo owned").stdout == "owned\n"


def test_prune_returns_int_and_removes_expired(client, spawn):
    sandbox = spawn(ttl="1s")
    time.sleep(2.0)
    pruned = client.prune()
    assert isinstance(pruned, int) and pruned >= 0
    # Pruned now or reaped earlier by the TTL reaper: either way it is gone.
    with pytest.raises(SandboxNotFound):
        client.get(sandbox.id)
    assert isinstance(client.prune(), int)
