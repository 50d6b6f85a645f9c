"""Live SDK suite: server information, spawn admission, quotas and templates.

Covers health, providers, pool status, ``admission`` (allowed, denied, invalid, side-effect
free), the quota summary, template CRUD / defaults / validation through ``client.templates``,
and spawning from a template (``spawn_template`` and ``spawn(template=...)``).
"""

from __future__ import annotations

import pytest

from sdk_helpers import (
    IMAGE,
    PROVIDER,
    RUN_ID,
    SDK_DEFAULT_IMAGE,
    assert_api_error,
    go_duration,
    info_of,
    utc_timestamp,
)
from stacyvm import (
    QuotaSummary,
    Sandbox,
    SandboxNotFound,
    SpawnAdmissionDecision,
    StacyVMError,
    Template,
)


# --------------------------------------------------------------------------------------------
# server info: health, providers, pool, admission, quotas
# --------------------------------------------------------------------------------------------


def test_health(client):
    health = client.health()
    assert health["status"] == "ok"
    assert isinstance(health.get("version"), str) and health["version"]
    assert go_duration(health["uptime"]) >= 0


def test_providers(client):
    providers = client.providers()
    assert isinstance(providers, list) and providers
    names = [p["name"] for p in providers]
    assert names == sorted(names), "providers must be sorted by name"
    for p in providers:
        assert isinstance(p["healthy"], bool)
        assert isinstance(p["default"], bool)
        assert isinstance(p.get("capabilities", []), list)
    assert sum(p["default"] for p in providers) == 1
    if PROVIDER:
        assert PROVIDER in names
    mock = [p for p in providers if p["name"] == "mock"]
    if mock:
        assert mock[0]["healthy"] is True
        assert "exec" in mock[0]["capabilities"]


def test_pool_status(client):
    status = client.pool_status()
    assert isinstance(status, dict)
    assert isinstance(status["enabled"], bool)
    if status["enabled"]:
        for key in ("vms", "max_vms", "total_users", "max_users_per_vm"):
            assert isinstance(status[key], int)


def test_admission_allows_default_spawn(client):
    decision = client.admission()
    assert isinstance(decision, SpawnAdmissionDecision)
    assert decision.allowed is True
    assert isinstance(decision.queueable, bool)
    detailed = client.admission(image="python:3.12", ttl="1h", memory_mb=256, vcpus=1,
                                owner_id=f"owner-{RUN_ID}", metadata={"k": "v"})
    assert detailed.allowed is True


def test_admission_denies_oversized_ttl(client):
    decision = client.admission(ttl="48h")
    assert isinstance(decision, SpawnAdmissionDecision)
    assert decision.allowed is False
    assert decision.queueable is False
    assert decision.reason == "max_ttl"
    assert go_duration(decision.max_ttl) == 24 * 3600


def test_admission_unhappy_paths(client):
    with pytest.raises(StacyVMError) as excinfo:
        client.admission(ttl="banana")
    assert_api_error(excinfo, "BAD_REQUEST")
    with pytest.raises(StacyVMError) as excinfo:
        client.admission(owner_id="bad/owner")
    assert_api_error(excinfo, "BAD_REQUEST")


def test_admission_does_not_create_a_sandbox(client):
    before = {s.id for s in client.list()}
    assert client.admission(image="alpine:latest").allowed is True
    assert {s.id for s in client.list()} - before == set()


def test_quota_summary(client):
    summary = client.quota_summary()  # TypeError here means extra keys on the wire
    assert isinstance(summary, QuotaSummary)
    for value in (summary.total, summary.with_max_sandboxes, summary.with_max_ttl,
                  summary.with_max_exec_timeout):
        assert isinstance(value, int) and value >= 0


# --------------------------------------------------------------------------------------------
# templates
# --------------------------------------------------------------------------------------------


def _assert_template(t: Template, name: str) -> None:
    assert isinstance(t, Template)
    assert t.name == name
    assert t.image == "python:3.12"
    assert t.memory_mb == 256
    assert t.vcpus == 2
    assert go_duration(t.ttl) == 45 * 60, t.ttl
    assert t.provider == ""
    assert t.metadata == {"team": "sdk", "run": RUN_ID}


def test_template_crud(client, template_name):
    tmpl = Template(name=template_name, image="python:3.12", memory_mb=256, vcpus=2,
                    ttl="45m", metadata={"team": "sdk", "run": RUN_ID})
    _assert_template(client.templates.save(tmpl), template_name)
    _assert_template(client.templates.get(template_name), template_name)

    with pytest.raises(StacyVMError) as excinfo:
        client.templates.save(tmpl)
    assert_api_error(excinfo, "CONFLICT")

    listed = client.templates.list()
    assert all(isinstance(t, Template) for t in listed)
    names = [t.name for t in listed]
    assert template_name in names
    _assert_template(listed[names.index(template_name)], template_name)
    assert names == sorted(names), "templates are listed by name"

    assert client.templates.delete(template_name) is None
    with pytest.raises(SandboxNotFound):
        client.templates.get(template_name)
    with pytest.raises(SandboxNotFound):
        client.templates.delete(template_name)
    assert template_name not in [t.name for t in client.templates.list()]


def test_template_defaults_round_trip(client, template_name):
    saved = client.templates.save(Template(name=template_name, image="alpine:latest"))
    got = client.templates.get(template_name)
    for t in (saved, got):
        assert (t.name, t.image, t.memory_mb, t.vcpus, t.provider, t.metadata) == (
            template_name, "alpine:latest", 512, 1, "", {})
        assert go_duration(t.ttl) == 30 * 60


def test_template_validation(client, template_name):
    with pytest.raises(StacyVMError) as excinfo:
        client.templates.save(Template(name=template_name, image=""))
    assert_api_error(excinfo, "BAD_REQUEST")
    with pytest.raises(SandboxNotFound):
        client.templates.get(template_name)
    with pytest.raises(SandboxNotFound):
        client.templates.get(f"no-such-template-{RUN_ID}")


def test_spawn_template(client, spawn, template_name):
    client.templates.save(Template(name=template_name, image="python:3.12", memory_mb=256,
                                   vcpus=2, ttl="45m", metadata={"team": "sdk", "run": RUN_ID}))
    sandbox = client.spawn_template(template_name)
    spawn.track(sandbox)
    assert isinstance(sandbox, Sandbox)
    assert sandbox.id.startswith("sb-")
    assert sandbox.state == "running"
    assert sandbox.image == "python:3.12"
    info = info_of(client, sandbox.id)
    assert (info.image, info.memory_mb, info.vcpus) == ("python:3.12", 256, 2)
    assert info.metadata.get("template") == template_name
    assert info.metadata.get("team") == "sdk"
    lifetime = utc_timestamp(info.expires_at) - utc_timestamp(info.created_at)
    assert abs(lifetime.total_seconds() - 45 * 60) < 5
    assert sandbox.exec("echo from template").stdout == "from template\n"
    sandbox.destroy()
    with pytest.raises(SandboxNotFound):
        client.get(sandbox.id)


def test_spawn_with_template_parameter(client, spawn, template_name):
    # The template's image exists nowhere: the spawn below must not use it.
    client.templates.save(Template(name=template_name, image=f"template-only-{RUN_ID}:1",
                                   memory_mb=256, vcpus=2, ttl="45m"))
    # spawn(template=...) always sends an image — the SDK's default "alpine:latest" unless one is
    # given (the spawn fixture gives STACYVM_TEST_IMAGE when set) — and the sent image overrides
    # the template image; memory, vcpus and ttl are not sent and come from the template.
    sandbox = spawn(template=template_name)
    info = info_of(client, sandbox.id)
    assert info.image == (IMAGE or SDK_DEFAULT_IMAGE)
    assert (info.memory_mb, info.vcpus) == (256, 2)
    lifetime = utc_timestamp(info.expires_at) - utc_timestamp(info.created_at)
    assert abs(lifetime.total_seconds() - 45 * 60) < 5


def test_spawn_unknown_template_is_not_found(client):
    with pytest.raises(SandboxNotFound):
        client.spawn_template(f"no-such-template-{RUN_ID}")
