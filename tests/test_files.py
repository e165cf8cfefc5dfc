"""apitx._files: an instance's files, in each server's own header dialect.

Live tests run on LXD and Incus (``[lxd]``, ``[incus]``) against a stopped
instance (the file API works on stopped instances on both).
"""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest

from apitx import APIException, APINotFoundException, Entry, RequestError
from apitx.testing import Answer

live = pytest.mark.live


# -- the dialect, offline: what is sent to a server that says what it is -----------

@pytest.mark.parametrize("name, prefix", [("incus", "x-incus-"), ("lxd", "x-lxd-"),
                                          ("", "x-lxd-")])
def test_headers_are_in_the_family_of_the_server(canned, canned_api, name, prefix):
    canned.answers["/1.0"] = Answer.sync({"api_version": "1.0", "environment": {
        "server": name, "server_version": "9.9"}})
    canned.answers["/1.0/instances/c1/files"] = Answer.sync({})
    canned_api.files("c1", project="p1").push("/etc/motd", "hi", uid=5, gid=6, mode=0o640,
                                              append=True)
    pushed = canned.transport.requests[-1]
    assert (pushed.method, canned.targets()[-1], pushed.body) == (
        "POST", "/1.0/instances/c1/files?path=%2Fetc%2Fmotd&project=p1", b"hi")
    family = {k.lower(): v for k, v in pushed.headers.items()
              if k.lower().startswith(("x-lxd-", "x-incus-"))}
    assert family == {f"{prefix}type": "file", f"{prefix}write": "append", f"{prefix}uid": "5",
                      f"{prefix}gid": "6", f"{prefix}mode": "0640"}


def test_a_relative_path_is_refused_before_sending(canned, canned_api):
    with pytest.raises(ValueError, match="give an absolute path inside the instance, such as "
                                         "'/etc/motd'"):
        canned_api.files("c1").pull("etc/motd")
    assert canned.transport.requests == []


def test_a_source_of_another_type_is_refused(canned_api):
    with pytest.raises(TypeError, match="source must be bytes, str .the content., a "
                                        "pathlib.Path .a local file. or a binary file object"):
        canned_api.files("c1").push("/x", 42)  # type: ignore[arg-type]


# -- live, on each server ---------------------------------------------------------

def _owner_mode(api, instance, path):
    """(uid, gid, mode) as the server's own headers report them."""
    headers = api.get(f"instances/{instance}/files", params={"path": path},
                      stream=True).response.headers
    prefix = api.server.header_prefix
    return (int(headers[prefix + "Uid"]), int(headers[prefix + "Gid"]),
            int(headers[prefix + "Mode"], 8))


@live
def test_push_each_kind_of_source_and_pull_each_kind_of_target(api, instance, tmp_path):
    files = api.files(instance)
    local = tmp_path / "local.bin"
    local.write_bytes(bytes(range(256)) * 3)
    files.push("/tmp/from-str", "héllo\n", uid=1000, gid=1001, mode=0o600)
    files.push("/tmp/from-bytes", b"\x00\xff")
    files.push("/tmp/from-path", local, mode=0o755)
    with open(local, "rb") as stream:
        stream.seek(256)
        files.push("/tmp/from-file", stream)  # from where it stands
    assert files.pull("/tmp/from-str") == "héllo\n".encode()
    assert files.pull("/tmp/from-bytes") == b"\x00\xff"
    out = io.BytesIO()
    assert files.pull("/tmp/from-path", out) == 768 and out.getvalue() == local.read_bytes()
    assert files.pull("/tmp/from-file", tmp_path / "back.bin") == 512
    assert (tmp_path / "back.bin").read_bytes() == local.read_bytes()[256:]
    assert files.pull("/tmp/from-file", str(tmp_path / "again.bin")) == 512
    assert _owner_mode(api, instance, "/tmp/from-str") == (1000, 1001, 0o600)
    assert _owner_mode(api, instance, "/tmp/from-path")[2] == 0o755


@live
def test_append_adds_to_the_end(api, instance):
    files = api.files(instance)
    files.push("/tmp/log", "one\n")
    files.push("/tmp/log", b"two\n", append=True)
    assert files.pull("/tmp/log") == b"one\ntwo\n"
    files.push("/tmp/log", "three\n")
    assert files.pull("/tmp/log") == b"three\n"


@live
def test_mkdir_makes_the_same_directory_on_both_servers(api, instance):
    """With no mode LXD 5.0 makes 0750 and Incus 6.0 0755: mkdir always sends one."""
    files = api.files(instance)
    files.mkdir("/tmp/plain")
    files.mkdir("/tmp/owned", uid=1000, gid=1000, mode=0o700)
    assert _owner_mode(api, instance, "/tmp/plain") == (0, 0, 0o755)
    assert _owner_mode(api, instance, "/tmp/owned") == (1000, 1000, 0o700)
    files.push("/tmp/owned/f", "x")
    assert files.listdir("/tmp/owned") == ["f"]


@live
def test_symlink_delete_and_clear_errors(api, instance, server):
    files = api.files(instance)
    files.mkdir("/tmp/d")
    files.push("/tmp/d/f", "x")
    files.symlink("/tmp/link", "/tmp/d/f")
    with pytest.raises(APIException) as info:
        files.pull("/tmp/link")
    assert info.value.error == (f"cannot pull /tmp/link from {instance}: it is a symlink to "
                                "'/tmp/d/f': pull its target")
    with pytest.raises(APIException) as info:
        files.pull("/tmp/d")
    assert info.value.error == (f"cannot pull /tmp/d from {instance}: it is a directory: "
                                "pull_tree() copies it, listdir() lists it")
    with pytest.raises(APIException, match="it is not a directory"):
        files.listdir("/tmp/d/f")
    files.delete("/tmp/link")
    files.delete("/tmp/d/f")
    files.delete("/tmp/d")
    with pytest.raises(APINotFoundException) as info:
        files.pull("/tmp/d/f")
    assert info.value.error == f"/tmp/d/f: there is no /tmp/d/f in {instance}"
    with pytest.raises(APINotFoundException) as info:
        files.push("/tmp/d/f", "x")
    assert info.value.error == (f"/tmp/d/f: its parent directory /tmp/d does not exist in "
                                f"{instance} (mkdir() it first)")
    # A missing instance: the server's own words, which differ (Incus says more).
    with pytest.raises(APINotFoundException) as info:
        api.files("apitx-no-such-instance").pull("/etc/hostname")
    assert info.value.error.endswith("Instance not found")


@pytest.mark.sync_only  # threads / trees: the sync client's own
@live
def test_trees_keep_modes_owners_and_symlinks(api, instance, tmp_path):
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "a.txt").write_text("alpha\n")
    (source / "sub" / "run.sh").write_bytes(b"#!/bin/sh\necho hi\n")
    (source / "link").symlink_to("sub/run.sh")
    os.chmod(source / "a.txt", 0o640)
    os.chmod(source / "sub" / "run.sh", 0o750)
    os.chmod(source / "sub", 0o710)
    os.chown(source / "a.txt", 1234, 2345)
    files = api.files(instance)
    written = files.push_tree(source, "/tmp/tree")
    assert written == ["/tmp/tree", "/tmp/tree/sub", "/tmp/tree/a.txt", "/tmp/tree/link",
                       "/tmp/tree/sub/run.sh"]
    assert _owner_mode(api, instance, "/tmp/tree/a.txt") == (1234, 2345, 0o640)
    back = tmp_path / "back"
    entries = files.pull_tree("/tmp/tree", back)
    assert {e.path: (e.type, e.mode) for e in entries} == {
        "/tmp/tree": ("directory", stat.S_IMODE(os.stat(source).st_mode)),
        "/tmp/tree/a.txt": ("file", 0o640), "/tmp/tree/link": ("symlink", 0o777),
        "/tmp/tree/sub": ("directory", 0o710), "/tmp/tree/sub/run.sh": ("file", 0o750)}
    assert isinstance(entries[0], Entry)
    for relative in ("a.txt", "sub", "sub/run.sh"):
        mine, theirs = os.lstat(source / relative), os.lstat(back / relative)
        assert (stat.S_IMODE(theirs.st_mode), theirs.st_uid, theirs.st_gid) == (
            stat.S_IMODE(mine.st_mode), mine.st_uid, mine.st_gid), relative
    # Both servers report a link's target made absolute (measured: a link to
    # "sub/run.sh" pulls as "/tmp/tree/sub/run.sh"): the relative form is lost.
    assert os.readlink(back / "link") == "/tmp/tree/sub/run.sh"
    assert (back / "sub" / "run.sh").read_bytes() == b"#!/bin/sh\necho hi\n"
    assert not [p for p in Path(back).rglob(".apitx-pull-*")]  # no temporary left
    with pytest.raises(APIException, match="it is a file, not a directory; pull.. copies"):
        files.pull_tree("/tmp/tree/a.txt", tmp_path / "not-made")
    assert not (tmp_path / "not-made").exists()
    with pytest.raises(RequestError, match="is not a local directory"):
        files.push_tree(source / "a.txt", "/tmp/x")


@live
def test_a_failed_pull_to_a_path_keeps_the_old_file(api, instance, tmp_path):
    kept = tmp_path / "kept"
    kept.write_bytes(b"precious")
    with pytest.raises(APINotFoundException):
        api.files(instance).pull("/tmp/nope", kept)
    assert kept.read_bytes() == b"precious" and os.listdir(tmp_path) == ["kept"]


@live
def test_the_other_familys_headers_are_ignored_by_lxd(api, instance, server):
    """LXD 5.0's own behaviour, the reason the family follows the server:
    X-Incus-type: directory is ignored there, and a plain file is written.
    (Incus 6.0 reads both families, so it makes a directory.)"""
    api.post(f"instances/{instance}/files", params={"path": "/tmp/made"}, data=b"",
             headers={"X-Incus-type": "directory"})
    kind = api.get(f"instances/{instance}/files", params={"path": "/tmp/made"},
                   stream=True).response.headers[api.server.header_prefix + "Type"]
    assert kind == {"lxd": "file", "incus": "directory"}[server.name]
