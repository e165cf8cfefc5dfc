"""The file API's rules, as pure functions: what both clients' ``files()`` share.

LXD's file API is one URL, ``/1.0/instances/<name>/files?path=<path>``, and a
family of headers that say what a push is (``type``: file, directory or
symlink; ``uid``, ``gid``, ``mode``; ``write``: overwrite or append) and what
a pull got, in the server's own family (``X-LXD-*``, ``X-Incus-*``). Nothing
here sends: :mod:`apitx._files` (sync) and :mod:`apitx._aio._files` (async)
do, and ask here how.

Example:

>>> write_headers('X-LXD-', 'file', uid=0, gid=0, mode=0o640, append=False)
{'X-LXD-type': 'file', 'X-LXD-write': 'overwrite', 'Content-Type': 'application/octet-stream',
 'X-LXD-uid': '0', 'X-LXD-gid': '0', 'X-LXD-mode': '0640'}
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from typing import Any, BinaryIO, Dict, List, Optional
from urllib.parse import quote

from . import _checks
from ._exceptions import APIException, APINotFoundException, RequestError, RequestTypeError
from ._result import BaseResult

#: The file API says "Not Found" for a missing path (and for a push whose
#: parent directory is missing), on LXD 5.0 and Incus 6.0 alike.
_NOT_FOUND = "Not Found"

@dataclass(frozen=True)
class Entry:
    """One path inside an instance, as a pull saw it: ``type`` is ``'file'``,
    ``'directory'`` or ``'symlink'``; ``mode`` the permission bits."""

    path: str
    type: str
    uid: int
    gid: int
    mode: int



def file_params(path: Any, project: Optional[str]) -> Dict[str, str]:
    """The query of the file API for ``path`` (absolute, or a RequestError)."""
    if not isinstance(path, str):
        raise RequestTypeError(f"path {path!r} is not a string: give an absolute path "
                               "inside the instance, such as '/etc/hosts'; nothing was sent")
    if not path.startswith("/"):
        raise RequestError(f"{path!r}: give an absolute path inside the instance, such as "
                           f"'/{path}'; nothing was sent")
    params = {"path": path}
    if project:
        params["project"] = project
    return params


def files_url(instance: Any) -> str:
    """The file API's path for ``instance`` (a name, or a RequestTypeError)."""
    return f"instances/{quote(_checks.text(instance, 'files(instance)'), safe='')}/files"


def push_body(path: str, source: Any) -> Any:
    """What a push sends: bytes as they are, str as UTF-8, a path (still a
    path: the caller opens it, see :func:`opened`) or a file object; anything
    else is a :class:`RequestTypeError`."""
    if isinstance(source, os.PathLike):
        _checks.local_path(source, f"push({path!r}, source)")
        return source
    if isinstance(source, str):
        return source.encode("utf-8")
    if isinstance(source, (bytes, bytearray, memoryview)) or hasattr(source, "read"):
        return source
    raise RequestTypeError(f"push({path!r}, source): source must be bytes, str (the content), "
                           f"a pathlib.Path (a local file) or a binary file object, not "
                           f"{type(source).__name__}; nothing was sent")


def opened(path: str, source: "os.PathLike[str]") -> BinaryIO:
    """The local file a push streams, open; one that cannot be read is a
    :class:`RequestError` (nothing was sent)."""
    local = os.fspath(source)
    try:
        return open(local, "rb")
    except OSError as exc:
        raise _checks.unreadable(local, f"push({path!r}, source)", exc) from exc


def symlink_body(path: str, target: Any) -> bytes:
    """What a push of a symlink sends: its target, as UTF-8."""
    return _checks.text(target, f"symlink({path!r}, target)").encode("utf-8")


def write_headers(prefix: str, kind: str, uid: Optional[int], gid: Optional[int],
                  mode: Optional[int], append: bool) -> Dict[str, str]:
    """The headers of a push, in the server's family (``X-LXD-``, ``X-Incus-``)."""
    owner = {name: _checks.optional_whole_number(value, f"{name}=")
             for name, value in (("uid", uid), ("gid", gid), ("mode", mode))}
    headers = {f"{prefix}type": kind, f"{prefix}write": "append" if append else "overwrite",
               "Content-Type": "application/octet-stream"}
    for name in ("uid", "gid"):
        if owner[name] is not None:
            headers[f"{prefix}{name}"] = str(owner[name])
    if owner["mode"] is not None:
        headers[f"{prefix}mode"] = f"{owner['mode'] & 0o7777:04o}"
    return headers


def missing(exc: APINotFoundException, method: str, path: str,
            instance: str) -> APINotFoundException:
    """The file API's bare "Not Found", saying which path of which instance
    (or the server's own words when the instance itself is missing)."""
    if exc.error != _NOT_FOUND:
        return exc  # the instance (or its project) is missing: the server says so
    where = (f"its parent directory {posixpath.dirname(path)} does not exist in "
             f"{instance} (mkdir() it first)" if method == "POST" else
             f"there is no {path} in {instance}")
    return APINotFoundException(exc.result, error=f"{path}: {where}")


def entry_of(prefix: str, path: str, headers: Any) -> Entry:
    """What a pull's headers say ``path`` is, read in the server's family."""
    def number(name: str, base: int = 10) -> int:
        try:
            return int(headers.get(prefix + name, ""), base)
        except ValueError:
            return 0 if name != "mode" else 0o644

    return Entry(path=path, type=headers.get(f"{prefix}type", "file"),
                 uid=number("uid"), gid=number("gid"), mode=number("mode", 8))


def refuse_pull(entry: Entry, result: BaseResult, instance: str) -> None:
    """Raise unless the entry is a file: pull() copies files only."""
    if entry.type == "file":
        return
    what = ("a directory: pull_tree() copies it, listdir() lists it"
            if entry.type == "directory" else
            f"a {entry.type} to {result.response.content.decode(errors='replace')!r}: pull "
            "its target")
    raise APIException(result, error=f"cannot pull {entry.path} from {instance}: it is {what}")


def listing(entry: Entry, result: BaseResult, instance: str) -> List[str]:
    """The names in a directory's answer; raises when it is not a directory."""
    if entry.type != "directory":
        raise APIException(result, error=f"cannot list {entry.path} in {instance}: "
                                          "it is not a directory")
    return [str(name) for name in result.metadata or ()]
