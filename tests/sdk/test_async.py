"""Live SDK suite: ``AsyncClient`` and its async ``Sandbox``.

One end-to-end walk through the async API (exec, stream, files, TTL, server info, errors), the
async context manager, concurrent spawns and execs across sandboxes, and ``spawn_template``.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from sdk_helpers import (
    IMAGE_KW,
    PROVIDER,
    TAG,
    assert_api_error,
    assert_stream_chunks_wellformed,
    chunks_by_run,
    run_async,
)
from stacyvm import AsyncClient, QuotaSummary, SandboxNotFound, StacyVMError, Template


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
            async with await ac.spawn(metadata=TAG, provider=PROVIDER, **IMAGE_KW) as sandbox:
                assert (await sandbox.exec("whoami")).exit_code == 0
                sid = sandbox.id
            with pytest.raises(SandboxNotFound):
                await ac.get(sid)

    run_async(main())


def test_async_concurrent_spawns_and_execs(base_url):
    async def main():
        async with AsyncClient(base_url, timeout=60.0) as ac:
            boxes = await asyncio.gather(*[ac.spawn(metadata=TAG, provider=PROVIDER, **IMAGE_KW)
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
