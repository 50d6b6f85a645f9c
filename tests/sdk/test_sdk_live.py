"""Live acceptance suite: the published ``stacyvm==0.1.1`` Python SDK against a running server.

The server is started by the caller (see ``scripts/sdk-live-test.sh``) and found through
``STACYVM_URL``. It is expected to use the ``mock`` provider: sandboxes are temp directories on
the same host, and ``/workspace/a.txt`` in the API maps to ``<sandbox dir>/workspace/a.txt``.
Optional: ``STACYVM_TEST_PROVIDER`` forces the provider named on every spawn.

Wire contract: /work/shared/spec/sdk-compat.md and rest-api.md. Every sandbox a test spawns is
destroyed by the ``spawn`` fixture's teardown (or by the test itself when that is the point).
"""

from __future__ import annotations

import asyncio
import os
import re
import time
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import urlparse

import httpx
import pytest

import stacyvm
from stacyvm import (
    AsyncClient,
    Client,
    ExecResult,
    ProviderError,
    QuotaSummary,
    Sandbox,
    SandboxInfo,
    SandboxNotFound,
    SpawnAdmissionDecision,
    StacyVMError,
    Template,
)
from stacyvm.streaming import StreamChunk

RUN_ID = uuid.uuid4().hex[:8]
TAG = {"suite": "sdk-live", "run": RUN_ID}
PROVIDER = os.environ.get("STACYVM_TEST_PROVIDER") or None
HOST_PASSWD = "/etc/passwd"


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------------


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
    """``spawn(**kw)`` → Sandbox, tagged with this run's metadata and destroyed at teardown."""
    made: list[Sandbox] = []

    def _spawn(**kw) -> Sandbox:
        if PROVIDER and "provider" not in kw:
            kw["provider"] = PROVIDER
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


def run_async(coro):
    return asyncio.run(coro)


# --------------------------------------------------------------------------------------------
# README quick start and lifecycle
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
        client.spawn(provider="no-such-provider", metadata=TAG)


def test_invalid_user_id_header_is_rejected(base_url):
    with Client(base_url, user_id="has space") as c:
        with pytest.raises(StacyVMError) as excinfo:
            c.spawn(metadata=TAG)
    assert_api_error(excinfo, "BAD_REQUEST")


def test_valid_user_id_header_spawns(base_url):
    with Client(base_url, user_id=f"alice-{RUN_ID}@example.com") as c:
        with c.spawn(metadata=TAG) as sandbox:
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


# --------------------------------------------------------------------------------------------
# exec
# --------------------------------------------------------------------------------------------


def test_exec_shell_mode_is_default(sb):
    result = sb.exec("echo hello && echo world | tr a-z A-Z")
    assert isinstance(result, ExecResult)
    assert result.exit_code == 0
    assert result.stdout == "hello\nWORLD\n"
    assert result.stderr == ""
    assert go_duration(result.duration) >= 0


def test_exec_stderr_is_separate(sb):
    result = sb.exec("echo oops >&2")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr == "oops\n"


def test_exec_nonzero_exit_is_a_result_not_an_error(sb):
    result = sb.exec("exit 42")
    assert result.exit_code == 42
    assert result.stdout == "" and result.stderr == ""
    assert sb.exec("false").exit_code == 1
    missing = sb.exec("definitely-not-a-command-xyz")
    assert missing.exit_code == 127
    assert "definitely-not-a-command-xyz" in missing.stderr


def test_exec_mixed_output_and_exit_code(sb):
    result = sb.exec("echo out; echo err >&2; exit 3")
    assert (result.exit_code, result.stdout, result.stderr) == (3, "out\n", "err\n")


def test_exec_duration_is_go_duration(sb):
    result = sb.exec("sleep 0.3")
    assert result.exit_code == 0
    assert 0.25 <= go_duration(result.duration) < 10


def test_exec_shell_args_are_single_quoted(sb):
    result = sb.exec("echo", args=["it's", "$HOME", "a  b"])
    assert result.exit_code == 0
    assert result.stdout == "it's $HOME a  b\n"


def test_exec_argv_mode_passes_args_verbatim(sb):
    result = sb.exec("printf", args=["%s|%s|%s\n", "a b", "$HOME", "x;y"], mode="argv")
    assert result.exit_code == 0
    assert result.stdout == "a b|$HOME|x;y\n"
    no_shell = sb.exec("echo", args=["1", ">", "/workspace/redirected", "&&", "exit", "7"],
                       mode="argv")
    assert no_shell.exit_code == 0
    assert no_shell.stdout == "1 > /workspace/redirected && exit 7\n"
    with pytest.raises(StacyVMError):
        sb.read_file("/workspace/redirected")


def test_exec_argv_mode_exit_code(sb):
    assert sb.exec("sh", args=["-c", "exit 5"], mode="argv").exit_code == 5


def test_exec_explicit_shell_mode(sb):
    assert sb.exec("echo $((6 * 7))", mode="shell").stdout == "42\n"


def test_exec_rejects_unknown_mode_and_blank_argv_command(sb):
    with pytest.raises(StacyVMError) as excinfo:
        sb.exec("echo hi", mode="bogus")
    assert_api_error(excinfo, "BAD_REQUEST")
    with pytest.raises(StacyVMError) as excinfo:
        sb.exec("   ", mode="argv")
    assert_api_error(excinfo, "BAD_REQUEST")


def test_exec_env(sb):
    result = sb.exec('echo "$GREETING-$OTHER"', env={"GREETING": "hi there", "OTHER": "x=y"})
    assert result.stdout == "hi there-x=y\n"
    argv = sb.exec("printenv", args=["GREETING"], mode="argv", env={"GREETING": "argv-env"})
    assert argv.stdout == "argv-env\n"
    # Env is per exec, not sticky.
    assert sb.exec('echo "[$GREETING]"').stdout == "[]\n"


def test_exec_default_workdir_is_workspace(sb):
    sb.write_file("/workspace/here.txt", "in workspace")
    result = sb.exec("pwd; cat here.txt")
    lines = result.stdout.splitlines()
    assert lines[0].endswith("/workspace"), result.stdout
    assert lines[1] == "in workspace"


def test_exec_workdir(sb):
    sb.write_file("/workspace/sub/dir/file.txt", "from sub dir")
    result = sb.exec("pwd; cat file.txt", workdir="/workspace/sub/dir")
    lines = result.stdout.splitlines()
    assert result.exit_code == 0
    assert lines[0].endswith("/workspace/sub/dir"), result.stdout
    assert lines[1] == "from sub dir"
    argv = sb.exec("cat", args=["file.txt"], mode="argv", workdir="/workspace/sub/dir")
    assert argv.stdout == "from sub dir"


def test_exec_sees_files_written_by_api_and_vice_versa(sb):
    sb.write_file("/workspace/in.txt", "api->exec")
    assert sb.exec("cat in.txt").stdout == "api->exec"
    assert sb.exec("printf 'exec->api' > out.txt").exit_code == 0
    assert sb.read_file("/workspace/out.txt") == "exec->api"


def test_exec_timeout(sb):
    start = time.monotonic()
    with pytest.raises(StacyVMError) as excinfo:
        sb.exec("sleep 5", timeout="1s")
    elapsed = time.monotonic() - start
    assert_api_error(excinfo, "TIMEOUT")
    assert sb.id in str(excinfo.value)
    assert elapsed < 4.5, f"timeout should fire after ~1s, took {elapsed:.1f}s"
    # The sandbox survives a timed-out exec.
    assert sb.exec("echo still alive").stdout == "still alive\n"


def test_exec_within_timeout_succeeds(sb):
    result = sb.exec("sleep 0.2; echo done", timeout="10s")
    assert (result.exit_code, result.stdout) == (0, "done\n")


def test_exec_timeout_unhappy_paths(sb):
    with pytest.raises(StacyVMError) as excinfo:
        sb.exec("echo hi", timeout="soon")
    assert_api_error(excinfo, "BAD_REQUEST")
    with pytest.raises(StacyVMError) as excinfo:
        sb.exec("echo hi", timeout="-1s")
    assert_api_error(excinfo, "BAD_REQUEST")
    with pytest.raises(StacyVMError) as excinfo:
        sb.exec("echo hi", timeout="24h")  # above the default max_exec_timeout of 10m
    assert_api_error(excinfo, "RESOURCE_LIMIT")


def test_exec_large_output(sb):
    result = sb.exec("head -c 200000 /dev/zero | tr '\\0' x")
    assert result.exit_code == 0
    assert result.stdout == "x" * 200000


def test_exec_invalid_utf8_is_decoded_lossily(sb):
    result = sb.exec("printf 'ok\\377\\n'")
    assert result.exit_code == 0
    assert result.stdout == "ok\ufffd\n"


def test_exec_unicode_round_trip(sb):
    assert sb.exec("echo 'héllo ✓ 日本'").stdout == "héllo ✓ 日本\n"


# --------------------------------------------------------------------------------------------
# exec_stream (NDJSON)
# --------------------------------------------------------------------------------------------


def test_exec_stream_interleaves_stdout_and_stderr_in_order(sb):
    chunks = list(sb.exec_stream("echo a; sleep 0.3; echo b >&2; sleep 0.3; echo c"))
    assert_stream_chunks_wellformed(chunks)
    assert chunks_by_run(chunks) == [("stdout", "a\n"), ("stderr", "b\n"), ("stdout", "c\n")]


def test_exec_stream_without_pauses_keeps_each_stream_intact(sb):
    chunks = list(sb.exec_stream("echo a; echo b >&2; echo c"))
    assert_stream_chunks_wellformed(chunks)
    assert "".join(c.data for c in chunks if c.stream == "stdout") == "a\nc\n"
    assert "".join(c.data for c in chunks if c.stream == "stderr") == "b\n"


def test_exec_stream_is_incremental(sb):
    start = time.monotonic()
    arrivals = []
    for chunk in sb.exec_stream("echo first; sleep 2; echo second"):
        arrivals.append((time.monotonic() - start, chunk.data))
    assert "".join(d for _, d in arrivals) == "first\nsecond\n"
    assert arrivals[0][1].startswith("first")
    assert arrivals[0][0] < 1.5, f"first chunk arrived only after {arrivals[0][0]:.1f}s"
    assert arrivals[-1][0] >= 1.9


def test_exec_stream_many_lines(sb):
    chunks = list(sb.exec_stream("i=1; while [ $i -le 300 ]; do echo line-$i; i=$((i+1)); done"))
    assert_stream_chunks_wellformed(chunks)
    assert all(c.stream == "stdout" for c in chunks)
    assert "".join(c.data for c in chunks) == "".join(f"line-{i}\n" for i in range(1, 301))


def test_exec_stream_args_env_workdir_and_argv(sb):
    sb.write_file("/workspace/s/f.txt", "streamed file")
    chunks = list(sb.exec_stream('echo "$V"; cat f.txt', env={"V": "env-ok"},
                                 workdir="/workspace/s"))
    assert "".join(c.data for c in chunks) == "env-ok\nstreamed file"
    argv = list(sb.exec_stream("printf", args=["%s-%s", "a b", "$X"], mode="argv"))
    assert "".join(c.data for c in argv) == "a b-$X"
    shell_args = list(sb.exec_stream("echo", args=["it's"]))
    assert "".join(c.data for c in shell_args) == "it's\n"


def test_exec_stream_nonzero_exit_and_no_output(sb):
    assert list(sb.exec_stream("exit 3")) == []
    chunks = list(sb.exec_stream("echo bye >&2; exit 9"))
    assert chunks_by_run(chunks) == [("stderr", "bye\n")]


def test_exec_stream_on_destroyed_sandbox_fails(base_url, spawn):
    sandbox = spawn()
    sandbox.destroy()
    # SDK quirk (sdk-compat.md §3): on a non-2xx streamed response handle_response touches the
    # unread body, so the SDK raises httpx.ResponseNotRead instead of SandboxNotFound.
    with pytest.raises((httpx.ResponseNotRead, SandboxNotFound)):
        list(sandbox.exec_stream("echo nope"))
    # The wire response itself must still be a normal JSON 404 (the TS SDK reads it).
    resp = httpx.post(f"{base_url}/api/v1/sandboxes/{sandbox.id}/exec",
                      json={"command": "echo nope", "stream": True}, timeout=30.0)
    assert resp.status_code == 404
    assert resp.json()["code"] == "NOT_FOUND"


# --------------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------------


def test_write_read_is_byte_exact(sb):
    cases = {
        "/workspace/plain.txt": "hello world",
        "/workspace/no-trailing-newline.txt": "line1\nline2",
        "/workspace/trailing.txt": "ends with newlines\n\n",
        "/workspace/unicode.txt": "héllo ✓ 日本 🚀",
        "/workspace/crlf.txt": "a\r\nb\r\n",
        "/workspace/empty.txt": "",
    }
    for path, content in cases.items():
        assert sb.write_file(path, content) is None
    for path, content in cases.items():
        assert sb.read_file(path) == content, path
    assert sb.stat_file("/workspace/empty.txt")["size"] == 0
    assert sb.stat_file("/workspace/unicode.txt")["size"] == len(cases["/workspace/unicode.txt"].encode())
    # Byte-exact from the process's point of view too.
    assert sb.exec("wc -c < plain.txt").stdout.strip() == "11"


def test_write_overwrites_and_truncates(sb):
    sb.write_file("/workspace/over.txt", "a much longer first version")
    sb.write_file("/workspace/over.txt", "short")
    assert sb.read_file("/workspace/over.txt") == "short"
    assert sb.stat_file("/workspace/over.txt")["size"] == 5


def test_write_creates_nested_parent_dirs(sb):
    sb.write_file("/workspace/deep/a/b/c/file.txt", "deep")
    assert sb.read_file("/workspace/deep/a/b/c/file.txt") == "deep"
    for d in ("/workspace/deep", "/workspace/deep/a/b", "/workspace/deep/a/b/c"):
        assert sb.stat_file(d)["is_dir"] is True, d
    # Paths outside /workspace are fine too: they live inside the sandbox root.
    sb.write_file("/app/main.py", "print('hi')")
    assert sb.read_file("/app/main.py") == "print('hi')"


def test_paths_with_special_characters(sb):
    path = "/workspace/dir with space/ä+b&c=d?.txt"
    sb.write_file(path, "special")
    assert sb.read_file(path) == "special"
    listed = sb.list_files("/workspace/dir with space")
    assert [e["path"] for e in listed] == [path]
    assert sb.glob_files("/workspace/dir with space/*.txt") == [path]
    assert sb.stat_file(path)["size"] == 7


def test_list_files(sb):
    sb.write_file("/workspace/listing/x.txt", "x")
    sb.write_file("/workspace/listing/sub/y.txt", "yy")
    entries = sb.list_files("/workspace/listing")
    assert isinstance(entries, list)
    for e in entries:
        assert isinstance(e["path"], str)
        assert isinstance(e["is_dir"], bool)
        assert isinstance(e["size"], int)
    by_path = {e["path"]: e for e in entries}
    # Direct children only, with absolute paths.
    assert set(by_path) == {"/workspace/listing/x.txt", "/workspace/listing/sub"}
    assert by_path["/workspace/listing/x.txt"]["is_dir"] is False
    assert by_path["/workspace/listing/x.txt"]["size"] == 1
    assert by_path["/workspace/listing/sub"]["is_dir"] is True
    for p, e in by_path.items():
        assert e.get("name", p.rsplit("/", 1)[1]) == p.rsplit("/", 1)[1]


def test_list_files_empty_dir_and_root(sb):
    assert sb.exec("mkdir emptydir").exit_code == 0
    assert sb.list_files("/workspace/emptydir") == []
    sb.write_file("/workspace/rootcheck.txt", "r")
    root_paths = [e["path"] for e in sb.list_files()]  # SDK default path "/"
    assert "/workspace" in root_paths


def test_stat_file(sb):
    sb.write_file("/workspace/stat.txt", "hello world")
    info = sb.stat_file("/workspace/stat.txt")
    assert info["size"] == 11
    assert info["is_dir"] is False
    assert info["path"] == "/workspace/stat.txt"
    assert info["mode"] == "0644"
    utc_timestamp(info["mod_time"])
    d = sb.stat_file("/workspace")
    assert d["is_dir"] is True
    with pytest.raises(SandboxNotFound):
        sb.stat_file("/workspace/missing.txt")


def test_write_with_mode_makes_executable(sb):
    sb.write_file("/workspace/run.sh", "#!/bin/sh\necho ran\n", mode="755")
    assert sb.stat_file("/workspace/run.sh")["mode"] == "0755"
    assert sb.exec("./run.sh").stdout == "ran\n"
    sb.write_file("/workspace/run2.sh", "#!/bin/sh\necho ran2\n", mode="0700")
    assert sb.stat_file("/workspace/run2.sh")["mode"] == "0700"


def test_glob_files(sb):
    for name in ("a.log", "b.log", "c.txt"):
        sb.write_file(f"/workspace/{name}", name)
    matches = sb.glob_files("/workspace/*.log")
    assert isinstance(matches, list)
    assert sorted(matches) == ["/workspace/a.log", "/workspace/b.log"]
    assert sb.glob_files("/workspace/?.txt") == ["/workspace/c.txt"]
    assert sorted(sb.glob_files("/workspace/[ab].log")) == ["/workspace/a.log", "/workspace/b.log"]
    assert sb.glob_files("/workspace/*.nomatch") == []  # never null


def test_move_file(sb):
    sb.write_file("/workspace/old.txt", "moving")
    assert sb.move_file("/workspace/old.txt", "/workspace/new.txt") is None
    assert sb.read_file("/workspace/new.txt") == "moving"
    with pytest.raises(StacyVMError):
        sb.read_file("/workspace/old.txt")
    # The destination parent is created.
    sb.move_file("/workspace/new.txt", "/workspace/moved/into/dir.txt")
    assert sb.read_file("/workspace/moved/into/dir.txt") == "moving"
    assert sb.glob_files("/workspace/*.txt") == []


def test_move_missing_source_fails(sb):
    with pytest.raises(StacyVMError):
        sb.move_file("/workspace/does-not-exist.txt", "/workspace/x.txt")
    with pytest.raises(StacyVMError):
        sb.read_file("/workspace/x.txt")


def test_chmod_file(sb):
    sb.write_file("/workspace/perm.sh", "#!/bin/sh\necho perm\n")
    assert sb.stat_file("/workspace/perm.sh")["mode"] == "0644"
    assert sb.chmod_file("/workspace/perm.sh", "0755") is None
    assert sb.stat_file("/workspace/perm.sh")["mode"] == "0755"
    assert sb.exec("./perm.sh").stdout == "perm\n"
    sb.chmod_file("/workspace/perm.sh", "600")
    assert sb.stat_file("/workspace/perm.sh")["mode"] == "0600"
    sb.chmod_file("/workspace/perm.sh", "755")
    assert sb.stat_file("/workspace/perm.sh")["mode"] == "0755"


def test_chmod_unhappy_paths(sb):
    sb.write_file("/workspace/p.txt", "p")
    for bad in ("abc", "999", "rwxr-xr-x"):
        with pytest.raises(StacyVMError) as excinfo:
            sb.chmod_file("/workspace/p.txt", bad)
        assert_api_error(excinfo, "BAD_REQUEST")
    assert sb.stat_file("/workspace/p.txt")["mode"] == "0644"
    with pytest.raises(StacyVMError):
        sb.chmod_file("/workspace/missing.txt", "0755")


def test_delete_file(sb):
    sb.write_file("/workspace/gone.txt", "bye")
    assert sb.delete_file("/workspace/gone.txt") is None
    with pytest.raises(StacyVMError):
        sb.read_file("/workspace/gone.txt")
    with pytest.raises(SandboxNotFound):  # missing file → 404
        sb.delete_file("/workspace/gone.txt")


def test_delete_directory_requires_recursive(sb):
    sb.write_file("/workspace/tree/a.txt", "a")
    sb.write_file("/workspace/tree/nested/b.txt", "b")
    with pytest.raises(StacyVMError) as excinfo:
        sb.delete_file("/workspace/tree")
    assert_api_error(excinfo, "BAD_REQUEST")
    assert sb.read_file("/workspace/tree/nested/b.txt") == "b"
    sb.delete_file("/workspace/tree", recursive=True)
    for p in ("/workspace/tree/nested/b.txt", "/workspace/tree/a.txt"):
        with pytest.raises(StacyVMError):
            sb.read_file(p)
    with pytest.raises(StacyVMError):
        sb.stat_file("/workspace/tree")
    assert [e["path"] for e in sb.list_files("/workspace") if e["path"] == "/workspace/tree"] == []


def test_delete_empty_directory_without_recursive(sb):
    assert sb.exec("mkdir hollow").exit_code == 0
    assert sb.stat_file("/workspace/hollow")["is_dir"] is True
    sb.delete_file("/workspace/hollow")
    with pytest.raises(StacyVMError):
        sb.stat_file("/workspace/hollow")


def test_file_read_unhappy_paths(sb):
    with pytest.raises(SandboxNotFound):
        sb.read_file("/workspace/never-written.txt")
    sb.write_file("/workspace/adir/f.txt", "f")
    with pytest.raises(StacyVMError) as excinfo:
        sb.read_file("/workspace/adir")  # reading a directory
    assert_api_error(excinfo, "BAD_REQUEST")
    with pytest.raises(StacyVMError) as excinfo:
        sb.read_file("")
    assert_api_error(excinfo, "BAD_REQUEST")
    with pytest.raises(StacyVMError) as excinfo:
        sb.write_file("", "no path")
    assert_api_error(excinfo, "BAD_REQUEST")


def test_files_are_isolated_between_sandboxes(spawn):
    a, b = spawn(), spawn()
    a.write_file("/workspace/private.txt", "only in a")
    with pytest.raises(StacyVMError):
        b.read_file("/workspace/private.txt")
    assert b.glob_files("/workspace/*.txt") == []


# --------------------------------------------------------------------------------------------
# path traversal
# --------------------------------------------------------------------------------------------


TRAVERSAL_READS = (
    "/workspace/../../etc/passwd",
    "/workspace/" + "../" * 20 + "etc/passwd",
    "/../../../../etc/passwd",
    "../../../../../../etc/passwd",
)


@pytest.mark.parametrize("path", TRAVERSAL_READS, ids=["up2", "up20", "root-up", "relative-up"])
def test_traversal_read_never_returns_host_file(sb, path):
    try:
        content = sb.read_file(path)
    except StacyVMError:
        return
    # Only a provider with its own /etc/passwd (a container or VM) may answer at all.
    assert sb.provider != "mock", f"read_file({path!r}) succeeded on mock ({len(content)} chars)"
    assert content != host_passwd(), f"read_file({path!r}) returned the host's /etc/passwd"


def test_absolute_etc_passwd_is_not_the_hosts(sb):
    try:
        content = sb.read_file("/etc/passwd")
    except StacyVMError:
        return  # on mock there is no /etc/passwd inside the sandbox root
    assert content != host_passwd(), "the file API returned the host's /etc/passwd"


@pytest.fixture
def host_victim(base_url, tmp_path_factory):
    """A host file (that this test owns) which traversal attempts aim at."""
    if not server_is_local(base_url):
        pytest.skip("host-side checks need the server on this machine")
    victim = tmp_path_factory.mktemp("victim") / "victim.txt"
    victim.write_text("host-only secret")
    return victim


def _escape(host_path) -> str:
    return "/workspace" + "/.." * 30 + str(host_path)


def test_traversal_write_move_delete_chmod_do_not_touch_host(sb, host_victim):
    marker = host_victim.parent / "created-by-escape.txt"
    attempts = [
        lambda: sb.write_file(_escape(marker), "escaped"),
        lambda: sb.write_file(_escape(host_victim), "overwritten"),
        lambda: sb.chmod_file(_escape(host_victim), "0777"),
        lambda: sb.move_file(_escape(host_victim), "/workspace/stolen.txt"),
        lambda: sb.delete_file(_escape(host_victim)),
    ]
    for attempt in attempts:
        try:
            attempt()
        except StacyVMError:
            pass
    assert not marker.exists(), "write_file escaped the sandbox root"
    assert host_victim.exists(), "move/delete reached a host file"
    assert host_victim.read_text() == "host-only secret", "write_file overwrote a host file"
    assert oct(host_victim.stat().st_mode & 0o777) != oct(0o777), "chmod reached a host file"
    try:
        assert sb.read_file("/workspace/stolen.txt") != "host-only secret"
    except StacyVMError:
        pass


def test_traversal_read_stat_list_glob_do_not_expose_host(sb, host_victim):
    try:
        assert sb.read_file(_escape(host_victim)) != "host-only secret"
    except StacyVMError:
        pass
    try:
        assert sb.stat_file(_escape(host_victim))["size"] != len("host-only secret")
    except StacyVMError:
        pass
    try:
        listed = sb.list_files(_escape(host_victim.parent))
    except StacyVMError:
        listed = []
    assert not any(str(e.get("path", "")).endswith("victim.txt") for e in listed)
    try:
        found = sb.glob_files(_escape(host_victim.parent) + "/*.txt")
    except StacyVMError:
        found = []
    assert found == []


def test_symlink_out_of_sandbox_is_not_followed(base_url, sb):
    if not server_is_local(base_url):
        pytest.skip("host-side checks need the server on this machine")
    made = sb.exec("ln -s /etc etclink")
    assert made.exit_code == 0, made.stderr
    try:
        content = sb.read_file("/workspace/etclink/passwd")
    except StacyVMError:
        return
    assert content != host_passwd(), "the file API followed a symlink out of the sandbox root"


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


def test_sdk_package_facts():
    assert stacyvm.__version__ == "0.1.0"  # the 0.1.1 wheel still says 0.1.0
    assert not hasattr(stacyvm, "StreamChunk")
    assert not hasattr(stacyvm, "TemplateManager")
    assert SandboxNotFound("x").code == "NOT_FOUND"
    assert issubclass(ProviderError, StacyVMError)


# --------------------------------------------------------------------------------------------
# templates
# --------------------------------------------------------------------------------------------


@pytest.fixture
def template_name(client):
    name = f"sdk-live-{RUN_ID}-{uuid.uuid4().hex[:6]}"
    yield name
    try:
        client.templates.delete(name)
    except SandboxNotFound:
        pass


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
    client.templates.save(Template(name=template_name, image="python:3.12", memory_mb=256,
                                   vcpus=2, ttl="45m"))
    # spawn(template=...) still sends the SDK's default image "alpine:latest", which overrides the
    # template image; memory, vcpus and ttl are not sent and come from the template.
    sandbox = spawn(template=template_name)
    info = info_of(client, sandbox.id)
    assert (info.memory_mb, info.vcpus) == (256, 2)
    lifetime = utc_timestamp(info.expires_at) - utc_timestamp(info.created_at)
    assert abs(lifetime.total_seconds() - 45 * 60) < 5


def test_spawn_unknown_template_is_not_found(client):
    with pytest.raises(SandboxNotFound):
        client.spawn_template(f"no-such-template-{RUN_ID}")


# --------------------------------------------------------------------------------------------
# AsyncClient
# --------------------------------------------------------------------------------------------


def test_async_end_to_end(base_url):
    async def main():
        async with AsyncClient(base_url, timeout=60.0) as ac:
            health = await ac.health()
            assert health["status"] == "ok"
            sandbox = await ac.spawn(image="python:3.12", metadata=TAG, provider=PROVIDER)
            try:
                assert sandbox.id.startswith("sb-") and sandbox.state == "running"
                assert sandbox.image == "python:3.12"

                res = await sandbox.exec('python3 -c "print(\'hello async\')"')
                assert (res.exit_code, res.stdout, res.stderr) == (0, "hello async\n", "")
                res = await sandbox.exec("echo oops >&2; exit 42")
                assert (res.exit_code, res.stdout, res.stderr) == (42, "", "oops\n")
                res = await sandbox.exec("printf", args=["%s", "a b"], mode="argv")
                assert res.stdout == "a b"
                res = await sandbox.exec('echo "$E"; pwd', env={"E": "async-env"},
                                         workdir="/workspace")
                assert res.stdout.splitlines()[0] == "async-env"
                assert res.stdout.splitlines()[1].endswith("/workspace")

                chunks = [c async for c in sandbox.exec_stream(
                    "echo a; sleep 0.3; echo b >&2; sleep 0.3; echo c")]
                assert_stream_chunks_wellformed(chunks)
                assert chunks_by_run(chunks) == [("stdout", "a\n"), ("stderr", "b\n"),
                                                 ("stdout", "c\n")]

                await sandbox.write_file("/workspace/async/hello.txt", "hello world")
                assert await sandbox.read_file("/workspace/async/hello.txt") == "hello world"
                stat = await sandbox.stat_file("/workspace/async/hello.txt")
                assert (stat["size"], stat["is_dir"]) == (11, False)
                entries = await sandbox.list_files("/workspace/async")
                assert [(e["path"], e["is_dir"]) for e in entries] == [
                    ("/workspace/async/hello.txt", False)]
                for name in ("a.log", "b.log", "c.txt"):
                    await sandbox.write_file(f"/workspace/async/{name}", name)
                assert sorted(await sandbox.glob_files("/workspace/async/*.log")) == [
                    "/workspace/async/a.log", "/workspace/async/b.log"]
                await sandbox.move_file("/workspace/async/c.txt", "/workspace/async/d.txt")
                with pytest.raises(StacyVMError):
                    await sandbox.read_file("/workspace/async/c.txt")
                await sandbox.chmod_file("/workspace/async/d.txt", "755")
                assert (await sandbox.stat_file("/workspace/async/d.txt"))["mode"] == "0755"
                await sandbox.delete_file("/workspace/async", recursive=True)
                with pytest.raises(StacyVMError):
                    await sandbox.stat_file("/workspace/async")
                with pytest.raises(StacyVMError):
                    await sandbox.read_file("/workspace/../../etc/passwd")

                with pytest.raises(StacyVMError) as excinfo:
                    await sandbox.exec("sleep 5", timeout="1s")
                assert_api_error(excinfo, "TIMEOUT")

                await sandbox.extend_ttl("1h")
                assert sandbox.state == "running"
                again = await ac.get(sandbox.id)
                assert again.id == sandbox.id and again.state == "running"
                listed = await ac.list()
                assert sandbox.id in [s.id for s in listed]
                assert isinstance(await ac.prune(), int)
                assert isinstance((await ac.pool_status())["enabled"], bool)
                assert (await ac.admission()).allowed is True
                assert await ac.providers()
                assert isinstance(await ac.quota_summary(), QuotaSummary)
            finally:
                await sandbox.destroy()
            with pytest.raises(SandboxNotFound):
                await ac.get(sandbox.id)
            with pytest.raises(SandboxNotFound):
                await sandbox.exec("echo gone")
            await sandbox.destroy()  # twice is fine
            with pytest.raises(SandboxNotFound):
                await ac.get("sb-nonexistent")

    run_async(main())


def test_async_context_manager_destroys(base_url):
    async def main():
        async with AsyncClient(base_url) as ac:
            async with await ac.spawn(metadata=TAG, provider=PROVIDER) as sandbox:
                assert (await sandbox.exec("whoami")).exit_code == 0
                sid = sandbox.id
            with pytest.raises(SandboxNotFound):
                await ac.get(sid)

    run_async(main())


def test_async_concurrent_spawns_and_execs(base_url):
    async def main():
        async with AsyncClient(base_url, timeout=60.0) as ac:
            boxes = await asyncio.gather(*[ac.spawn(metadata=TAG, provider=PROVIDER)
                                           for _ in range(4)])
            try:
                assert len({b.id for b in boxes}) == 4
                start = time.monotonic()
                results = await asyncio.gather(*[b.exec(f"sleep 1; echo {i}")
                                                 for i, b in enumerate(boxes)])
                elapsed = time.monotonic() - start
                assert [r.stdout for r in results] == [f"{i}\n" for i in range(4)]
                assert elapsed < 3.5, f"execs in different sandboxes ran serially ({elapsed:.1f}s)"
                # Files in one sandbox are invisible to another.
                await boxes[0].write_file("/workspace/mine.txt", "0")
                with pytest.raises(StacyVMError):
                    await boxes[1].read_file("/workspace/mine.txt")
            finally:
                await asyncio.gather(*[b.destroy() for b in boxes], return_exceptions=True)

    run_async(main())


def test_async_spawn_template(base_url, client, template_name):
    client.templates.save(Template(name=template_name, image="python:3.12", vcpus=2, ttl="45m"))

    async def main():
        async with AsyncClient(base_url) as ac:
            assert not hasattr(ac, "templates")  # AsyncClient has no template manager
            sandbox = await ac.spawn_template(template_name)
            try:
                assert sandbox.state == "running"
                assert (await sandbox.exec("echo t")).stdout == "t\n"
            finally:
                await sandbox.destroy()

    run_async(main())
