"""An instance's files, in the dialect of the server that holds them.

LXD's file API is one URL, ``/1.0/instances/<name>/files?path=<path>``, and a
family of headers that say what a push is (``type``: file, directory or
symlink; ``uid``, ``gid``, ``mode``; ``write``: overwrite or append) and what
a pull got. LXD reads ``X-LXD-*``; Incus reads ``X-Incus-*`` (and 6.0 still
honours LXD's, but an Incus host in issue 9 did not: a ``type: directory``
push made a plain file). A header the server does not read is ignored in
silence, so the family is chosen from what the server says it is
(``api.server.name``), never guessed from a socket path.

Every body is streamed: a push sends a file object or a local file in pieces
(requests reads it as it sends), a pull to a file or a path writes each piece
as it arrives. Memory stays flat whatever the size (``bench/files_memory.py``).

What the two servers do differently here, and what apitx does about it, is in
README "Servers": a directory made with no mode is 0750 on LXD 5.0 and 0755 on
Incus 6.0, so :meth:`Files.mkdir` always sends one (0755 unless told).

Example::

    files = api.files('c1')
    files.push('/etc/motd', 'hello\\n', mode=0o644)          # str: the content
    files.push('/root/big.img', Path('big.img'))             # Path: a local file, streamed
    files.pull('/etc/motd')                                  # b'hello\\n'
    files.pull_tree('/etc/ssh', Path('ssh-backup'))
"""

from __future__ import annotations

import os
import posixpath
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Dict, Iterator, List, Optional, Tuple, Union, overload
from urllib.parse import quote

from ._client import Client
from ._exceptions import APIException, APINotFoundException, RequestError, RequestTypeError
from ._result import APIResult

#: What :meth:`Files.push` takes: ``bytes`` or ``str`` are the content itself
#: (str is encoded as UTF-8); an ``os.PathLike`` (``pathlib.Path``) is a local
#: file, streamed; a binary file object is streamed from where it stands.
Source = Union[bytes, str, "os.PathLike[str]", IO[bytes]]
#: Where :meth:`Files.pull` writes: a binary file object, or a local path
#: (``str`` or ``os.PathLike``), replaced only when the pull succeeds.
Target = Union[str, "os.PathLike[str]", IO[bytes]]

#: The file API says "Not Found" for a missing path (and for a push whose
#: parent directory is missing), on LXD 5.0 and Incus 6.0 alike.
_NOT_FOUND = "Not Found"
_CHUNK = 1 << 16


@dataclass(frozen=True)
class Entry:
    """One path inside an instance, as a pull saw it: ``type`` is ``'file'``,
    ``'directory'`` or ``'symlink'``; ``mode`` the permission bits."""

    path: str
    type: str
    uid: int
    gid: int
    mode: int


class Files:
    """The files of one instance (``api.files('c1')``; ``project`` for one
    outside the default project).

    >>> api.files('c1').mkdir('/srv/app', uid=1000, gid=1000, mode=0o750)
    """

    def __init__(self, api: Client, instance: str, project: Optional[str] = None) -> None:
        self.api = api
        self.instance = instance
        self.project = project
        self._url = f"instances/{quote(instance, safe='')}/files"

    def __repr__(self) -> str:
        where = f" project={self.project}" if self.project else ""
        return f"<Files {self.instance}{where} on {self.api.endpoint.display}>"

    # -- one path ---------------------------------------------------------------

    def push(self, path: str, source: Source, *, uid: Optional[int] = None,
             gid: Optional[int] = None, mode: Optional[int] = None,
             append: bool = False) -> None:
        """Write ``source`` to ``path`` in the instance (its parent must exist).

        ``source``: ``bytes`` or ``str`` are the content (str as UTF-8); a
        ``pathlib.Path`` (any ``os.PathLike``) is a local file; a binary file
        object is read from its current position. Paths and file objects are
        streamed, never read whole. ``uid``, ``gid`` and ``mode`` (an int such
        as ``0o640``) set the owner and permissions (the server's defaults
        otherwise: root, 0644); ``append`` appends instead of replacing.

        >>> files.push('/etc/app.conf', Path('app.conf'), mode=0o600)
        """
        if isinstance(source, os.PathLike):
            with open(source, "rb") as body:
                self._write(path, "file", body, uid, gid, mode, append)
        elif isinstance(source, str):
            self._write(path, "file", source.encode("utf-8"), uid, gid, mode, append)
        elif isinstance(source, (bytes, bytearray, memoryview)) or hasattr(source, "read"):
            self._write(path, "file", source, uid, gid, mode, append)
        else:
            raise RequestTypeError(f"push({path!r}, source): source must be bytes, str (the "
                                   f"content), a pathlib.Path (a local file) or a binary file "
                                   f"object, not {type(source).__name__}; nothing was sent")

    @overload
    def pull(self, path: str) -> bytes: ...

    @overload
    def pull(self, path: str, target: Target) -> int: ...

    def pull(self, path: str, target: Optional[Target] = None) -> Union[bytes, int]:
        """Read the file at ``path``: its bytes when no ``target``; else write
        them, streamed, to ``target`` (a binary file object, or a local path,
        replaced only once the whole file has arrived) and return the count.

        A directory is refused (:meth:`pull_tree` copies one, :meth:`listdir`
        lists it); a symlink is refused with its target named.

        >>> files.pull('/etc/hostname')
        b'c1\\n'
        """
        result = self._get(path, stream=target is not None)
        kind = self._entry(path, result).type
        if kind != "file":
            what = ("a directory: pull_tree() copies it, listdir() lists it"
                    if kind == "directory" else
                    f"a {kind} to {result.response.content.decode(errors='replace')!r}: pull "
                    "its target")
            raise APIException(result, error=f"cannot pull {path} from {self.instance}: "
                                              f"it is {what}")
        if target is None:
            return bytes(result.response.content)
        if isinstance(target, (str, os.PathLike)):
            return replace_file(os.fspath(target), result.iter_content(_CHUNK))
        return write_pieces(result.iter_content(_CHUNK), target)

    def mkdir(self, path: str, *, uid: Optional[int] = None, gid: Optional[int] = None,
              mode: int = 0o755) -> None:
        """Make the directory ``path`` (its parent must exist; one that exists
        is left as it is). ``mode`` is always sent: with none, LXD 5.0 makes
        0750 and Incus 6.0 0755.

        >>> files.mkdir('/srv/data', uid=1000, gid=1000, mode=0o700)
        """
        self._write(path, "directory", b"", uid, gid, mode, False)

    def symlink(self, path: str, target: str) -> None:
        """Make ``path`` a symbolic link to ``target`` (not followed, not
        checked; both servers refuse to replace an existing path).

        >>> files.symlink('/etc/localtime', '/usr/share/zoneinfo/UTC')
        """
        self._write(path, "symlink", target.encode("utf-8"), None, None, None, False)

    def delete(self, path: str) -> None:
        """Delete a file, a symlink or an empty directory.

        >>> files.delete('/tmp/scratch')
        """
        self._send("DELETE", path)

    def listdir(self, path: str) -> List[str]:
        """The names in the directory ``path``, as the server lists them.

        >>> files.listdir('/etc')[:3]
        ['group', 'hostname', 'hosts']
        """
        result = self._get(path, stream=False)
        if self._entry(path, result).type != "directory":
            raise APIException(result, error=f"cannot list {path} in {self.instance}: "
                                              "it is not a directory")
        return [str(name) for name in result.metadata or ()]

    # -- trees ------------------------------------------------------------------

    def push_tree(self, local_dir: Union[str, "os.PathLike[str]"], path: str) -> List[str]:
        """Copy the local directory ``local_dir`` to ``path`` in the instance,
        keeping modes, owners (uid/gid) and symlinks (not followed); return
        the instance paths written, in order.

        ``path``'s parent must exist; directories that exist are kept as they
        are. Symlinks get the server's owner (root): the file API sets no
        owner on a link.

        >>> files.push_tree(Path('site'), '/srv/site')
        """
        root = os.fspath(local_dir)
        if not os.path.isdir(root):
            raise RequestError(f"push_tree({root!r}, {path!r}): {root} is not a local "
                               "directory; push() copies one file; nothing was sent")
        written = []
        for local, remote in _walk_local(root, path):
            info = os.lstat(local)
            if stat.S_ISLNK(info.st_mode):
                self.symlink(remote, os.readlink(local))
            elif stat.S_ISDIR(info.st_mode):
                self.mkdir(remote, uid=info.st_uid, gid=info.st_gid,
                           mode=stat.S_IMODE(info.st_mode))
            elif stat.S_ISREG(info.st_mode):
                self.push(remote, Path(local), uid=info.st_uid, gid=info.st_gid,
                          mode=stat.S_IMODE(info.st_mode))
            else:
                continue  # sockets, fifos, devices: the file API has no such type
            written.append(remote)
        return written

    def pull_tree(self, path: str, local_dir: Union[str, "os.PathLike[str]"]) -> List[Entry]:
        """Copy the directory ``path`` of the instance to ``local_dir`` (made if
        missing), keeping modes, symlinks and, when this process may chown
        (root), owners; return the entries copied, in order.

        >>> files.pull_tree('/etc', Path('etc-copy'))
        """
        root = os.fspath(local_dir)
        copied: List[Entry] = []
        directories = []
        todo = [(path, root)]
        while todo:
            remote, local = todo.pop(0)
            result = self._get(remote, stream=True)
            entry = self._entry(remote, result)
            if remote == path and entry.type != "directory":
                raise APIException(result, error=f"cannot pull_tree {path} from "
                                                  f"{self.instance}: it is a {entry.type}, "
                                                  "not a directory; pull() copies a file")
            if entry.type == "directory":
                os.makedirs(local, exist_ok=True)
                os.chmod(local, 0o700)  # writable while it is filled; its mode comes last
                directories.append((local, entry))
                todo.extend((posixpath.join(remote, name), os.path.join(local, name))
                            for name in sorted(result.metadata or ()))
            elif entry.type == "symlink":
                os.symlink(result.response.content.decode("utf-8"), local)
            else:
                replace_file(local, result.iter_content(_CHUNK))
                os.chmod(local, entry.mode)
            _chown(local, entry)
            copied.append(entry)
        for local, entry in reversed(directories):  # deepest first
            os.chmod(local, entry.mode)
        return copied

    # -- the wire -----------------------------------------------------------------

    def _params(self, path: str) -> Dict[str, str]:
        params = {"path": path}
        if self.project:
            params["project"] = self.project
        return params

    def _write(self, path: str, kind: str, body: Any, uid: Optional[int],
               gid: Optional[int], mode: Optional[int], append: bool) -> None:
        prefix = self.api.server.header_prefix
        headers = {f"{prefix}type": kind, f"{prefix}write": "append" if append else "overwrite"}
        for name, value in (("uid", uid), ("gid", gid)):
            if value is not None:
                headers[f"{prefix}{name}"] = str(int(value))
        if mode is not None:
            headers[f"{prefix}mode"] = f"{int(mode) & 0o7777:04o}"
        self._send("POST", path, data=body, headers={
            **headers, "Content-Type": "application/octet-stream"})

    def _get(self, path: str, *, stream: bool) -> APIResult:
        return self._send("GET", path, stream=stream)

    def _send(self, method: str, path: str, **options: Any) -> APIResult:
        """One request on ``path``, with the file API's bare "Not Found"
        turned into a message that says which path of which instance."""
        if not isinstance(path, str):
            raise RequestTypeError(f"path {path!r} is not a string: give an absolute path "
                                   "inside the instance, such as '/etc/hosts'; nothing was sent")
        if not path.startswith("/"):
            raise RequestError(f"{path!r}: give an absolute path inside the instance, such as "
                               f"'/{path}'; nothing was sent")
        try:
            return self.api.request(method, self._url, params=self._params(path), **options)
        except APINotFoundException as exc:
            if exc.error != _NOT_FOUND:
                raise  # the instance (or its project) is missing: the server says so
            where = (f"its parent directory {posixpath.dirname(path)} does not exist in "
                     f"{self.instance} (mkdir() it first)" if method == "POST" else
                     f"there is no {path} in {self.instance}")
            raise APINotFoundException(exc.result, error=f"{path}: {where}") from None

    def _entry(self, path: str, result: APIResult) -> Entry:
        """What the pull's headers say ``path`` is, read in the server's family."""
        prefix = self.api.server.header_prefix
        headers = result.response.headers

        def number(name: str, base: int = 10) -> int:
            try:
                return int(headers.get(prefix + name, ""), base)
            except ValueError:
                return 0 if name != "mode" else 0o644

        return Entry(path=path, type=headers.get(f"{prefix}type", "file"),
                     uid=number("uid"), gid=number("gid"), mode=number("mode", 8))


def _walk_local(root: str, path: str) -> Iterator[Tuple[str, str]]:
    """``(local path, instance path)`` for ``root`` and all below it, parents
    before children, links not followed."""
    yield root, path
    for top, dirs, names in os.walk(root):
        dirs.sort()  # os.walk descends in this list's order
        remote_top = posixpath.join(path, os.path.relpath(top, root).replace(os.sep, "/"))
        for name in dirs + sorted(names):
            yield os.path.join(top, name), posixpath.normpath(posixpath.join(remote_top, name))


def write_pieces(pieces: Iterator[bytes], out: IO[bytes]) -> int:
    """Write ``pieces`` to ``out`` as they come; return the byte count (also
    used by :mod:`apitx._backups`)."""
    count = 0
    for piece in pieces:
        out.write(piece)
        count += len(piece)
    return count


def replace_file(path: str, pieces: Iterator[bytes]) -> int:
    """Write ``pieces`` beside ``path``, then put the file in its place: a
    pull (or an export) that breaks halfway leaves any previous copy as it was."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, partial = tempfile.mkstemp(dir=directory, prefix=".apitx-pull-")
    try:
        with os.fdopen(fd, "wb") as out:
            count = write_pieces(pieces, out)
        os.replace(partial, path)
    except BaseException:
        os.unlink(partial)
        raise
    return count


def _chown(local: str, entry: Entry) -> None:
    """Give ``local`` the instance's owner when this process may (root)."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        os.lchown(local, entry.uid, entry.gid)
