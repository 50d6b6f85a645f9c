"""Live SDK suite: running commands with ``Sandbox.exec`` and ``Sandbox.exec_stream``.

Covers shell and argv modes, argument quoting, exit codes, stdout/stderr separation, env,
workdir, timeouts and their error codes, large / non-UTF-8 / unicode output, and the NDJSON
stream (ordering, incremental delivery, chunk shape, failure on a destroyed sandbox).
"""

from __future__ import annotations

import time

import httpx
import pytest

from sdk_helpers import (
    assert_api_error,
    assert_stream_chunks_wellformed,
    chunks_by_run,
    go_duration,
)
from stacyvm import ExecResult, SandboxNotFound, StacyVMError


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
