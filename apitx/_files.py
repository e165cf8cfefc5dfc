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

>>> from apitx import API
>>> files = API.factory().files(c1)
>>> files.push('/root/motd', 'hello\\n', mode=0o644)   # str: the content
>>> files.pull('/root/motd')
b'hello\\n'
>>> import tempfile
>>> with tempfile.TemporaryDirectory() as here:        # a local copy of a tree
...     [entry.path for entry in files.pull_tree('/etc', here)]
['/etc', '/etc/group', '/etc/inittab', '/etc/passwd']
"""

from __future__ import annotations

import os
import posixpath
import stat
from pathlib import Path
from typing import IO, Any, Iterator, List, Optional, Tuple, Union, cast, overload

from . import _checks
from ._atomic import atomic_write
from ._client import Client
from ._exceptions import APIException, APINotFoundException, RequestError
from ._file_api import (Entry, entry_of, file_params, files_url, listing, missing, opened,
                        push_body, refuse_pull, symlink_body, write_headers)
from ._result import APIResult

#: What :meth:`Files.push` takes: ``bytes`` or ``str`` are the content itself
#: (str is encoded as UTF-8); an ``os.PathLike`` (``pathlib.Path``) is a local
#: file, streamed; a binary file object is streamed from where it stands.
Source = Union[bytes, str, "os.PathLike[str]", IO[bytes]]
#: Where :meth:`Files.pull` writes: a binary file object, or a local path
#: (``str`` or ``os.PathLike``), replaced only when the pull succeeds.
Target = Union[str, "os.PathLike[str]", IO[bytes]]


class Files:
    """The files of one instance (``api.files('c1')``; ``project`` for one
    outside the default project).

    >>> from apitx import API
    >>> API.factory().files(c1)
    <Files apitx-... on unix:/var/lib/lxd/unix.socket>
    """

    def __init__(self, api: Client, instance: str, project: Optional[str] = None) -> None:
        self.api = api
        self.instance = instance
        self.project = _checks.optional_text(project, "files(project)")
        self._url = files_url(instance)

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

        >>> from apitx import API
        >>> files = API.factory().files(c1)
        >>> files.push('/root/app.conf', b'port = 8080\\n', uid=1000, mode=0o600)
        >>> files.push('/root/app.conf', b'debug = true\\n', append=True)
        >>> files.pull('/root/app.conf')
        b'port = 8080\\ndebug = true\\n'
        """
        body = push_body(path, source)
        if isinstance(body, os.PathLike):
            with opened(path, body) as local:
                self._write(path, "file", local, uid, gid, mode, append)
        else:
            self._write(path, "file", body, uid, gid, mode, append)

    @overload
    def pull(self, path: str) -> bytes: ...

    @overload
    def pull(self, path: str, target: Target) -> int: ...

    def pull(self, path: str, target: Optional[Target] = None) -> Union[bytes, int]:
        """Read the file at ``path``: its bytes when no ``target``; else write
        them, streamed, to ``target`` (a binary file object, or a local path,
        replaced only once the whole file has arrived, as
        :func:`~apitx.atomic_write` writes: through symlinks, keeping an
        existing file's mode; :class:`~apitx.LocalFileError`, before anything
        is sent, when it cannot be written) and return the count.

        A directory is refused (:meth:`pull_tree` copies one, :meth:`listdir`
        lists it); a symlink is refused with its target named.

        >>> from apitx import API
        >>> files = API.factory().files(c1)
        >>> files.pull('/etc/passwd')
        b'root:x:0:0:root:/root:/bin/sh\\n'
        >>> import io
        >>> copy = io.BytesIO()
        >>> files.pull('/etc/passwd', copy)                  # streamed to a file object
        30
        """
        if target is not None and not hasattr(target, "write"):
            # Opened first: a target that cannot be written costs no request.
            # (Never an int: open() would take it for a descriptor of the caller's.)
            with atomic_write(_checks.local_path(target, f"pull({path!r}, target)")) as out:
                return self.pull(path, out)
        result = self._get(path, stream=target is not None)
        refuse_pull(self._entry(path, result), result, self.instance)
        if target is None:
            return bytes(result.response.content)
        return _copy(result.iter_content(), cast(IO[bytes], target))  # has write(): above

    def mkdir(self, path: str, *, uid: Optional[int] = None, gid: Optional[int] = None,
              mode: int = 0o755) -> None:
        """Make the directory ``path`` (its parent must exist; one that exists
        is left as it is). ``mode`` is always sent: with none, LXD 5.0 makes
        0750 and Incus 6.0 0755.

        >>> from apitx import API
        >>> files = API.factory().files(c1)
        >>> files.mkdir('/srv')
        >>> files.mkdir('/srv/data', uid=1000, gid=1000, mode=0o700)
        >>> files.listdir('/srv')
        ['data']
        """
        self._write(path, "directory", b"", uid, gid, mode, False)

    def symlink(self, path: str, target: str) -> None:
        """Make ``path`` a symbolic link to ``target`` (not followed, not
        checked; both servers refuse to replace an existing path).

        >>> from apitx import API
        >>> files = API.factory().files(c1)
        >>> files.symlink('/root/shell', '/bin/sh')
        >>> files.pull('/root/shell')
        Traceback (most recent call last):
          ...
        apitx.APIException: GET ...: cannot pull /root/shell from apitx-...: it is a symlink to '/bin/sh': pull its target
        """
        self._write(path, "symlink", symlink_body(path, target), None, None, None, False)

    def delete(self, path: str) -> None:
        """Delete a file, a symlink or an empty directory.

        >>> from apitx import API
        >>> files = API.factory().files(c1)
        >>> files.push('/tmp/scratch', b'')
        >>> files.delete('/tmp/scratch')
        >>> 'scratch' in files.listdir('/tmp')
        False
        """
        self._send("DELETE", path)

    def listdir(self, path: str) -> List[str]:
        """The names in the directory ``path``, as the server lists them.

        >>> from apitx import API
        >>> API.factory().files(c1).listdir('/etc')
        ['group', 'inittab', 'passwd']
        """
        result = self._get(path, stream=False)
        return listing(self._entry(path, result), result, self.instance)

    # -- trees ------------------------------------------------------------------

    def push_tree(self, local_dir: Union[str, "os.PathLike[str]"], path: str) -> List[str]:
        """Copy the local directory ``local_dir`` to ``path`` in the instance,
        keeping modes, owners (uid/gid) and symlinks (not followed); return
        the instance paths written, in order.

        ``path``'s parent must exist; directories that exist are kept as they
        are. Symlinks get the server's owner (root): the file API sets no
        owner on a link.

        >>> import pathlib, tempfile
        >>> from apitx import API
        >>> files = API.factory().files(c1)
        >>> with tempfile.TemporaryDirectory() as here:
        ...     pathlib.Path(here, 'index.html').write_text('<h1>hello</h1>\\n')
        ...     files.push_tree(here, '/root/site')
        15
        ['/root/site', '/root/site/index.html']
        """
        root = _checks.local_path(local_dir, "push_tree(local_dir)")
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

        >>> import os, tempfile
        >>> from apitx import API
        >>> files = API.factory().files(c1)
        >>> with tempfile.TemporaryDirectory() as here:
        ...     copied = files.pull_tree('/etc', here)
        ...     sorted(os.listdir(here))
        ['group', 'inittab', 'passwd']
        >>> copied[0]
        Entry(path='/etc', type='directory', uid=0, gid=0, mode=493)
        """
        root = _checks.local_path(local_dir, "pull_tree(local_dir)")
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
                with atomic_write(local) as out:
                    _copy(result.iter_content(), out)
                os.chmod(local, entry.mode)
            _chown(local, entry)
            copied.append(entry)
        for local, entry in reversed(directories):  # deepest first
            os.chmod(local, entry.mode)
        return copied

    # -- the wire -----------------------------------------------------------------

    def _write(self, path: str, kind: str, body: Any, uid: Optional[int],
               gid: Optional[int], mode: Optional[int], append: bool) -> None:
        self._send("POST", path, data=body, headers=write_headers(
            self.api.server.header_prefix, kind, uid, gid, mode, append))

    def _get(self, path: str, *, stream: bool) -> APIResult:
        return self._send("GET", path, stream=stream)

    def _send(self, method: str, path: str, **options: Any) -> APIResult:
        """One request on ``path``, with the file API's bare "Not Found"
        turned into a message that says which path of which instance."""
        params = file_params(path, self.project)
        try:
            return self.api.request(method, self._url, params=params, **options)
        except APINotFoundException as exc:
            raise missing(exc, method, path, self.instance) from None

    def _entry(self, path: str, result: APIResult) -> Entry:
        """What the pull's headers say ``path`` is, read in the server's family."""
        return entry_of(self.api.server.header_prefix, path, result.response.headers)


def _walk_local(root: str, path: str) -> Iterator[Tuple[str, str]]:
    """``(local path, instance path)`` for ``root`` and all below it, parents
    before children, links not followed."""
    yield root, path
    for top, dirs, names in os.walk(root):
        dirs.sort()  # os.walk descends in this list's order
        remote_top = posixpath.join(path, os.path.relpath(top, root).replace(os.sep, "/"))
        for name in dirs + sorted(names):
            yield os.path.join(top, name), posixpath.normpath(posixpath.join(remote_top, name))


def _copy(pieces: Iterator[bytes], out: IO[bytes]) -> int:
    count = 0
    for piece in pieces:
        out.write(piece)
        count += len(piece)
    return count


def _chown(local: str, entry: Entry) -> None:
    """Give ``local`` the instance's owner when this process may (root)."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        os.lchown(local, entry.uid, entry.gid)
