"""apitx.atomic_write: the one writer of every file apitx replaces (``-o FILE``,
``Files.pull`` to a path, remotes' config), and ``Files.pull`` using it.

Real files in tmp_path; the pulls answer from a MockTransport (no server:
what is tested is where the bytes land, not how they came).
"""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys

import pytest

import apitx
from apitx import atomic_write
from apitx.testing import Answer, MockTransport

from processes import ENV, file_size_limit, full_device, owned_by_another


def test_the_file_is_replaced_only_when_the_block_succeeds(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(target) as out:
            out.write(b"half of the new")
            raise KeyboardInterrupt  # Ctrl-C mid-write
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]  # no temporary left
    with atomic_write(str(target)) as out:
        out.write(b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_a_symlink_is_written_through_as_cp_does(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "out").write_bytes(b"old")
    link, dangling = tmp_path / "link", tmp_path / "dangling"
    link.symlink_to("real/out")
    dangling.symlink_to("real/new")
    for path in (link, dangling):
        with atomic_write(path) as out:
            out.write(b"new")
    assert (os.readlink(link), os.readlink(dangling)) == ("real/out", "real/new")
    assert (tmp_path / "real" / "out").read_bytes() == (tmp_path / "real" / "new").read_bytes() \
        == b"new"


def test_an_existing_files_mode_and_owner_are_kept(tmp_path):
    target = tmp_path / "secret"
    target.write_bytes(b"old")
    os.chmod(target, 0o600)
    owner = owned_by_another(target)  # root replaces others' files: they must stay theirs
    with atomic_write(target) as out:
        out.write(b"new")
    info = target.stat()
    assert (stat.S_IMODE(info.st_mode), (info.st_uid, info.st_gid)) == (0o600, owner)


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_a_new_file_gets_the_mode_open_gives_it(tmp_path, umask, mode):
    saved = os.umask(umask)
    try:
        with atomic_write(tmp_path / "new") as out:
            out.write(b"x")
    finally:
        os.umask(saved)
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == mode


def test_a_device_is_written_in_place_never_replaced(tmp_path):
    device = full_device(tmp_path)
    with pytest.raises(apitx.LocalFileError) as caught:
        with atomic_write(device) as out:
            out.write(b"x")  # buffered: the full disk shows at the close
    assert (caught.value.errno, caught.value.filename) == (errno.ENOSPC, device)
    assert str(caught.value) == f"cannot write {device}: No space left on device"
    assert stat.S_ISCHR(os.stat(device).st_mode)


@pytest.mark.parametrize("make, code", [
    (lambda p: p.mkdir(), errno.EISDIR),
    (lambda p: None, errno.ENOENT),  # its folder does not exist
    (lambda p: p.symlink_to(p.name), errno.ELOOP),
])
def test_a_path_that_cannot_be_written_is_refused_before_the_block(tmp_path, make, code):
    target = tmp_path / "missing" / "out" if code == errno.ENOENT else tmp_path / "out"
    make(target)
    with pytest.raises(apitx.LocalFileError) as caught:
        with atomic_write(target):
            raise AssertionError("the block must not run")
    assert isinstance(caught.value, OSError) and caught.value.errno == code
    assert caught.value.filename == str(target)


def test_a_disk_that_fills_midway_leaves_the_old_file(tmp_path):
    """A subprocess, so the file size limit (EFBIG, as a full disk) is its own."""
    target = tmp_path / "kept"
    target.write_bytes(b"previous copy")
    script = ("import sys, apitx\n"
              "try:\n"
              "    with apitx.atomic_write(sys.argv[1]) as out:\n"
              "        out.write(b'x' * 100_000)\n"
              "except apitx.LocalFileError as exc:\n"
              "    print(exc)\n")
    done = subprocess.run([sys.executable, "-c", script, str(target)], capture_output=True,
                          env=ENV, timeout=60, preexec_fn=file_size_limit(50_000))
    assert done.stdout.decode() == f"cannot write {target}: File too large\n", done.stderr
    assert target.read_bytes() == b"previous copy"
    assert [p.name for p in tmp_path.iterdir()] == ["kept"]


# -- Files.pull to a path -------------------------------------------------------------------

def files(sent: list) -> apitx.Files:
    """The files of instance c1 on a server that answers every pull with b'pulled'."""
    def answer(request):
        sent.append(request.path)
        if request.path == "/1.0":
            return Answer.sync({"environment": {"server": "lxd"}, "api_extensions": []})
        return Answer(200, b"pulled", {"Content-Type": "application/octet-stream",
                                       "X-LXD-type": "file", "X-LXD-mode": "0644"})
    return apitx.API.factory(transport=MockTransport(answer)).files("c1")


def test_a_pull_writes_through_a_symlink_and_keeps_the_mode(tmp_path):
    real = tmp_path / "real"
    real.write_bytes(b"old")
    os.chmod(real, 0o640)
    (tmp_path / "link").symlink_to("real")
    assert files([]).pull("/etc/hosts", tmp_path / "link") == 6
    assert (tmp_path / "link").is_symlink() and real.read_bytes() == b"pulled"
    assert stat.S_IMODE(real.stat().st_mode) == 0o640


def test_a_pull_to_a_path_that_cannot_be_written_sends_nothing(tmp_path):
    sent: list = []
    with pytest.raises(apitx.LocalFileError, match=f"cannot write {tmp_path}/no/such/dir: "):
        files(sent).pull("/etc/hosts", str(tmp_path / "no" / "such" / "dir"))
    assert sent == []
