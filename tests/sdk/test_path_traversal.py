"""Live SDK suite: file API paths must never escape the sandbox root onto the host.

Tries ``..`` sequences, absolute host paths and a symlink made from inside the sandbox against
every file operation (read, write, stat, list, glob, move, chmod, delete). The host-side checks
need the server on this machine and are skipped otherwise.
"""

from __future__ import annotations

import pytest

from sdk_helpers import host_passwd, server_is_local
from stacyvm import StacyVMError


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
    if sb.provider == "mock":
        # The sandbox root is a host directory with no /etc in it.
        with pytest.raises(StacyVMError):
            sb.read_file("/etc/passwd")
        return
    if sb.provider == "oci":
        # The file API is rooted at the container's /: this is the image's own passwd.
        content = sb.read_file("/etc/passwd")
        assert content.startswith("root:x:0:0:"), content[:200]
        assert content != host_passwd(), "the file API returned the host's /etc/passwd"
        return
    try:
        content = sb.read_file("/etc/passwd")
    except StacyVMError:
        return
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
