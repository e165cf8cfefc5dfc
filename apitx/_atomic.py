"""Write a file whole or not at all: :func:`atomic_write`, apitx's one file writer.

Every file apitx replaces goes through it: a pull to a local path
(``Files.pull``, ``Files.pull_tree``), a remote's ``config.yml`` and pinned
certificate, and the ``apitx -o FILE`` result. One writer, because the rules
are easy to get subtly wrong three times over (they were: one writer created
0600 files, one replaced symlinks instead of writing through them, one lost
the owner of a file root rewrote).

The rules, those of ``cp`` writing a file:

- the bytes go to a temporary file beside the target, which takes the
  target's name only when the block succeeds: an exception, Ctrl-C, or a full
  disk noticed at the last flush removes the temporary and leaves the
  previous file as it was (there is no fsync: the promise is about a failing
  process, not a power cut);
- a symlink is written through (its target is replaced, the link stays), and
  a dangling one creates its target;
- an existing file keeps its mode and, when this process may give files away
  (root), its owner; a new one gets ``0666 & ~umask``, as ``open()`` makes
  files (the kernel applies the umask: no process-wide ``os.umask`` dance);
- a device or FIFO (``/dev/null``, a named pipe) cannot be replaced: it is
  written in place, as ``cp`` does;
- a directory is refused.

Every failure to write raises :class:`~apitx.LocalFileError` (an ``OSError``)
naming the path as given: the path cannot be used, the temporary cannot be
made, a write, the last flush or the rename fails (the file it yields turns
its own write errors into one). Anything else the block raises passes through
unchanged.

>>> import os, tempfile
>>> from apitx import API, atomic_write
>>> path = os.path.join(tempfile.mkdtemp(), 'busybox')
>>> answer = API.factory().get(f'instances/{c1}/files', params={'path': '/bin/busybox'},
...                            stream=True)
>>> with atomic_write(path) as out:
...     for piece in answer.iter_content():
...         _ = out.write(piece)
>>> os.path.getsize(path) > 500_000
True
"""

from __future__ import annotations

import errno
import io
import os
import secrets
import stat
from contextlib import contextmanager, suppress
from typing import Any, BinaryIO, Iterator, Optional, Tuple, Union

from . import _checks
from ._exceptions import LocalFileError

PathLike = Union[str, "os.PathLike[str]"]


@contextmanager
def atomic_write(path: PathLike) -> Iterator[BinaryIO]:
    """A binary file whose bytes replace ``path`` when the ``with`` block succeeds.

    Symlinks are followed, an existing file's mode and owner kept, a device or
    FIFO written in place (see the module for why). A failed block removes the
    temporary file and leaves ``path`` as it was. Raises
    :class:`~apitx.LocalFileError` when ``path`` cannot be written (before
    the block runs when the path itself is unusable).

    >>> import os, tempfile
    >>> from apitx import atomic_write
    >>> path = os.path.join(tempfile.mkdtemp(), 'notes.txt')
    >>> with atomic_write(path) as out:
    ...     out.write(b'first\\n')
    6
    >>> with atomic_write(path) as out:
    ...     out.write(b'half')
    ...     raise RuntimeError('stopped')
    Traceback (most recent call last):
    ...
    RuntimeError: stopped
    >>> open(path, 'rb').read()
    b'first\\n'
    """
    shown = _checks.local_path(path, "atomic_write(path)", outcome="nothing was written")
    existing = _existing(shown)
    final = os.path.realpath(shown)
    if existing is not None and not stat.S_ISREG(existing.st_mode):
        stream, temporary = _open_in_place(shown), None
    else:
        stream, temporary = _create_beside(final, existing, shown)
    try:
        yield stream
        _close(stream, shown)
        if temporary is not None:
            _rename(temporary, final, shown)
    except BaseException:
        _discard(stream, temporary)
        raise


def _failed(exc: OSError, shown: str) -> LocalFileError:
    return LocalFileError(exc.errno, exc.strerror or str(exc), shown)


class _File(io.BufferedWriter):
    """The file :func:`atomic_write` yields: a buffered binary file whose
    failed writes and flushes (a full disk) are :class:`LocalFileError`
    naming the path, as every other failure of the writer is."""

    def __init__(self, raw: io.FileIO, shown: str) -> None:
        super().__init__(raw)
        self._shown = shown

    def write(self, data: Any) -> int:
        try:
            return super().write(data)
        except BlockingIOError:
            raise  # a non-blocking FIFO's "not now": the caller's to handle
        except OSError as exc:
            raise _failed(exc, self._shown) from None

    def flush(self) -> None:
        try:
            super().flush()
        except BlockingIOError:
            raise
        except OSError as exc:
            raise _failed(exc, self._shown) from None


def _existing(shown: str) -> Optional[os.stat_result]:
    """What ``shown`` is now, following symlinks as ``cp`` does; None when nothing."""
    try:
        existing = os.stat(shown)
    except FileNotFoundError:
        return None  # a new file, or a dangling symlink's target
    except OSError as exc:  # a symlink loop, a file used as a folder, no permission
        raise _failed(exc, shown) from None
    if stat.S_ISDIR(existing.st_mode):
        raise LocalFileError(errno.EISDIR, "Is a directory: give a file name", shown)
    return existing


def _open_in_place(shown: str) -> BinaryIO:
    try:
        return _File(io.FileIO(shown, "w"), shown)
    except OSError as exc:
        raise _failed(exc, shown) from None


def _create_beside(final: str, existing: Optional[os.stat_result],
                   shown: str) -> Tuple[BinaryIO, str]:
    """A new file in ``final``'s folder, with the mode and owner ``final`` will have."""
    temporary = os.path.join(os.path.dirname(final), f".apitx-{secrets.token_hex(8)}")
    try:
        # 64 random bits: a name nobody holds, and nobody can guess ahead (O_EXCL).
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    except OSError as exc:
        raise _failed(exc, shown) from None
    try:
        if existing is not None:
            _take_over(fd, existing)
        return _File(io.FileIO(fd, "w"), shown), temporary
    except BaseException as exc:
        os.close(fd)
        os.unlink(temporary)
        if isinstance(exc, OSError):
            raise _failed(exc, shown) from None
        raise


def _take_over(fd: int, existing: os.stat_result) -> None:
    """Give the new file the owner and mode of the one it replaces."""
    if (existing.st_uid, existing.st_gid) != (os.geteuid(), os.getegid()):
        # Before chmod: chown clears setuid and setgid bits.
        with suppress(PermissionError):  # only root gives files away: then the copy is ours
            os.fchown(fd, existing.st_uid, existing.st_gid)
    os.fchmod(fd, stat.S_IMODE(existing.st_mode))


def _close(stream: BinaryIO, shown: str) -> None:
    """Close, where a full disk may show only now (what a failed write left is
    still buffered, so it fails again here)."""
    try:
        stream.close()
    except OSError as exc:
        raise _failed(exc, shown) from None


def _rename(temporary: str, final: str, shown: str) -> None:
    try:
        os.replace(temporary, final)
    except OSError as exc:
        raise _failed(exc, shown) from None


def _discard(stream: BinaryIO, temporary: Optional[str]) -> None:
    """After a failure: close without caring what the close says, remove the temporary."""
    with suppress(OSError):
        stream.close()  # its failure (the disk is still full) is the one being raised
    if temporary is not None:
        with suppress(FileNotFoundError):
            os.unlink(temporary)
