"""Live SDK suite: the file API inside one sandbox.

Covers write/read (byte-exact, overwrite, parent creation, special characters), list, stat,
write with mode, glob, move, chmod, delete (files, recursive and empty directories), the error
codes of each, and isolation between sandboxes. Path escapes are in ``test_path_traversal.py``.
"""

from __future__ import annotations

import pytest

from sdk_helpers import assert_api_error, utc_timestamp
from stacyvm import SandboxNotFound, StacyVMError


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
