"""An instance to a local backup file, and a backup file to an instance: streamed.

Export is the three requests ``lxc export`` makes (LXD 5.0.2 and Incus
6.0.4 alike): ``POST /1.0/instances/<n>/backups`` (an operation that makes
the backup on the server), ``GET …/backups/<b>/export`` (the file, streamed
piece by piece to the local file or file object, with its
``Content-Length`` as the total) and ``DELETE …/backups/<b>`` (whatever
happened; the backup also expires on its own a day later). A local path is
replaced only once the whole file has arrived.

Import is ``POST /1.0/instances`` with the file as the body
(``application/octet-stream``, streamed from the file as it is sent, with
its length) and the new name and pool in headers of the server's own family
(``X-LXD-name``, ``X-Incus-name``: Incus ignores ``X-LXD-name`` and imports
under the backup's own name, measured). Before anything is sent, the
backup's first member (``backup/index.yaml``) is read, when the file can be
read again from its start: it names the instance (so a name already taken is
refused up front) and holds its config, and LXD refuses keys only Incus
writes (:data:`apitx._compat.INCUS_ONLY_KEYS`).

>>> import io
>>> from apitx import API
>>> from apitx.migrate import export_instance, import_instance
>>> api = API.factory()
>>> backup = io.BytesIO()
>>> export_instance(api, c1, backup, progress=lambda p: print(p.stage, p.percent))
download ...
download 100
...
>>> backup.seek(0)
0
>>> import_instance(api, backup, name=c2).metadata['status']
'Success'
>>> api.get(f'instances/{c2}').metadata['status']
'Stopped'
"""

from __future__ import annotations

import datetime
import os
import tarfile
import time
import uuid
import zlib
from typing import IO, Any, Dict, Iterator, List, Optional, Union
from urllib.parse import quote

from ._client import Client
from ._compat import incus_only_keys
from ._exceptions import APITXError, RequestError, RequestTypeError
from ._atomic import atomic_write
from ._migration import (SideFailure, check_name, counted, failed_on, on_side, remove_created,
                         wait_reporting)
from ._result import APIResult
from ._transfer import ProgressCallback, ProgressReader, readable_size

#: Where an export is written: a local path, or a binary file object.
Destination = Union[str, "os.PathLike[str]", IO[bytes]]
#: What an import reads: a local path, or a binary file object.
Origin = Union[str, "os.PathLike[str]", IO[bytes]]

_CHUNK = 1 << 16
#: What an import reads of the file at once (see :class:`_Counted`).
_UPLOAD_PIECE = 1 << 20
#: The largest ``backup/index.yaml`` read to look inside a backup.
_INDEX_LIMIT = 1 << 20
#: How long the server keeps a backup apitx could not delete.
_EXPIRY = datetime.timedelta(days=1)


def export_instance(api: Client, name: str, destination: Destination, *,
                    instance_only: bool = False, optimized: bool = False,
                    compression: Optional[str] = None,
                    progress: Optional[ProgressCallback] = None,
                    timeout: Optional[float] = None) -> int:
    """Write a backup of instance ``name`` to ``destination`` (a path,
    replaced only when complete, or a binary file object); return its size.

    ``instance_only`` leaves the snapshots out, ``optimized`` asks for the
    storage driver's own format, ``compression`` names the algorithm
    (``'gzip'``, ``'none'``, ...; default: the server's). A path that cannot
    be written raises :class:`~apitx.LocalFileError` before anything is sent
    (later, for a full disk), leaving any file there as it was.

    >>> import os, tempfile
    >>> from apitx import API
    >>> from apitx.migrate import export_instance
    >>> with tempfile.TemporaryDirectory() as here:
    ...     export_instance(API.factory(), c1, os.path.join(here, 'c1.tar.gz'),
    ...                     instance_only=True, compression='gzip')
    ...     os.listdir(here)
    10...
    ['c1.tar.gz']
    """
    check_name("name", name)
    if isinstance(destination, (str, os.PathLike)):
        with atomic_write(destination) as out:
            return _export(api, name, out, instance_only, optimized, compression, progress,
                           timeout)
    if not hasattr(destination, "write"):
        raise RequestTypeError(f"destination={destination!r}: give a local path or a binary "
                               "file object open for writing; nothing was sent")
    return _export(api, name, destination, instance_only, optimized, compression, progress,
                   timeout)


def _export(api: Client, name: str, out: IO[bytes], instance_only: bool, optimized: bool,
            compression: Optional[str], progress: Optional[ProgressCallback],
            timeout: Optional[float]) -> int:
    """Make the backup, download it into ``out``, delete it (whatever happened)."""
    reader = ProgressReader(time.monotonic())
    url = f"instances/{quote(name, safe='')}/backups"
    backup = f"apitx-export-{uuid.uuid4().hex[:12]}"
    expires = (datetime.datetime.now(datetime.timezone.utc) + _EXPIRY).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    body: Dict[str, Any] = {"name": backup, "expires_at": expires,
                            "instance_only": instance_only, "optimized_storage": optimized}
    if compression is not None:
        body["compression_algorithm"] = compression
    try:
        wait_reporting(api.request("POST", url, json=body), reader, "source", progress, timeout)
    except APITXError as exc:
        raise failed_on("source", f"making a backup of instance {name} on "
                        f"{api.endpoint.display} failed: {exc}; nothing was written",
                        str(exc)) from exc
    try:
        return _download(api, f"{url}/{backup}/export", out, reader, progress)
    finally:
        try:
            api.request("DELETE", f"{url}/{backup}").wait(timeout)
        except APITXError:
            pass  # it expires on its own (expires_at)


def import_instance(api: Client, origin: Origin, *, name: Optional[str] = None,
                    pool: Optional[str] = None, progress: Optional[ProgressCallback] = None,
                    timeout: Optional[float] = None) -> APIResult:
    """Create an instance from the backup file ``origin`` (a path, or a
    binary file object read from where it stands), as ``name`` (default: the
    backup's), in ``pool``; return the server's final answer.

    >>> import os, tempfile
    >>> from apitx import API
    >>> from apitx.migrate import export_instance, import_instance
    >>> api = API.factory()
    >>> with tempfile.TemporaryDirectory() as here:
    ...     size = export_instance(api, c1, os.path.join(here, 'c1.tar.gz'))
    ...     import_instance(api, os.path.join(here, 'c1.tar.gz'), name=c2)
    <APIResult GET unix:/var/lib/lxd/unix.socket /1.0/operations/.../wait?timeout=30 HTTP/200>
    >>> import_instance(api, 'missing.tar.gz')
    Traceback (most recent call last):
      ...
    apitx.RequestError: missing.tar.gz: No such file or directory; nothing was sent
    """
    for label, value in (("name", name), ("pool", pool)):
        if value is not None:
            check_name(label, value)
    if isinstance(origin, (str, os.PathLike)):
        try:
            stream: IO[bytes] = open(origin, "rb")
        except OSError as exc:
            raise RequestError(f"{os.fspath(origin)}: {exc.strerror}; nothing was sent") \
                from exc
        with stream:
            return _Import(api, stream, name, pool, progress, timeout).run()
    if not hasattr(origin, "read"):
        raise RequestTypeError(f"origin={origin!r}: give a local path or a binary file object "
                               "open for reading; nothing was sent")
    return _Import(api, origin, name, pool, progress, timeout).run()


class _Import:
    def __init__(self, api: Client, stream: IO[bytes], name: Optional[str],
                 pool: Optional[str], progress: Optional[ProgressCallback],
                 timeout: Optional[float]) -> None:
        self.api, self.stream, self.pool = api, stream, pool
        self.progress, self.timeout = progress, timeout
        self.reader = ProgressReader(time.monotonic())
        self.index = read_index(stream)
        named = self.index.get("name") if self.index else None
        self.name = name or (str(named) if named else None)

    def run(self) -> APIResult:
        server = _on_target(lambda: self.api.server)
        self._refusals(server.name)
        if self.name is not None and _on_target(lambda: self.api.request(
                "GET", f"instances/{quote(str(self.name), safe='')}",
                validate=False)).status_code != 404:
            raise failed_on("target", f"the target at {self.api.endpoint.display} already has "
                            f"an instance {self.name}: give another name (name=) or delete "
                            "that one first; nothing was sent", f"instance {self.name} exists")
        if self.pool is not None and _on_target(lambda: self.api.request(
                "GET", f"storage-pools/{quote(str(self.pool), safe='')}",
                validate=False)).status_code == 404:
            raise failed_on("target", f"the target at {self.api.endpoint.display} has no "
                            f"storage pool {self.pool}; nothing was sent",
                            f"pool {self.pool} not found")
        prefix = server.header_prefix
        headers = {"Content-Type": "application/octet-stream"}
        if self.name:
            headers[f"{prefix}name"] = self.name
        if self.pool:
            headers[f"{prefix}pool"] = self.pool
        body = _Counted(self.stream, self._report)
        try:
            return wait_reporting(_on_target(lambda: self.api.request("POST", "instances",
                                                                      data=body.sendable(),
                                                            headers=headers)),
                         self.reader, "target", self.progress, self.timeout)
        except (APITXError, SideFailure) as exc:
            cause = exc.exc if isinstance(exc, SideFailure) else exc
            left = remove_created(self.api, f"instances/{quote(self.name, safe='')}",
                                  f"instance {self.name}") if self.name else None
            raise failed_on("target", f"importing {self.name or 'the backup'} into "
                            f"{self.api.endpoint.display} failed after {body.sent} bytes: "
                            f"{cause}" + (f"; left on the target: {left}" if left else
                                          "; nothing is left on the target"),
                            str(cause)) from cause
        except OSError as exc:
            raise failed_on("source", f"reading the backup file failed after {body.sent} "
                            f"bytes: {exc}", str(exc)) from exc

    def _refusals(self, family: str) -> None:
        if family != "lxd" or not self.index:
            return
        found = incus_only_keys(_configs(self.index))
        if found:
            raise RequestError(
                f"this backup of {self.index.get('name')} comes from Incus (its config has "
                f"{', '.join(found)}), which LXD refuses ('Unknown configuration key', "
                "measured with LXD 5.0.2 and Incus 6.0.4): import it into Incus, or copy the "
                "instance with apitx.migrate.copy_instance(..., snapshots=False); nothing was "
                "sent")

    def _report(self, sent: int, total: Optional[int]) -> None:
        if self.progress is not None:
            self.progress(self.reader.made("upload", f"{readable_size(sent)} sent",
                                           size=sent, total=total))


def _on_target(call: Any) -> Any:
    return on_side("target", call)


def read_index(stream: IO[bytes]) -> Optional[Dict[str, Any]]:
    """``backup/index.yaml``, the first member of a backup tarball, read from
    where ``stream`` stands, which is put back there; None when the stream
    cannot seek, or the file is not such a tarball (or is compressed in a way
    Python cannot read, such as zstd).

    >>> import io
    >>> from apitx import API
    >>> from apitx.migrate import export_instance
    >>> from apitx._backups import read_index
    >>> backup = io.BytesIO()
    >>> size = export_instance(API.factory(), c1, backup)
    >>> backup.seek(0)
    0
    >>> read_index(backup)['name'] == c1, backup.tell()      # read, then put back
    (True, 0)
    >>> read_index(io.BytesIO(b'not a tarball')) is None
    True
    """
    try:
        start = stream.tell()
        if not stream.seekable():
            return None
    except (AttributeError, OSError, ValueError):
        return None
    import yaml  # here, not at the top: an export never reads YAML (~15 ms to import)

    try:
        with tarfile.open(fileobj=stream, mode="r|*") as tar:
            member = tar.next()
            if member is None or member.name != "backup/index.yaml" or \
                    member.size > _INDEX_LIMIT:
                return None
            extracted = tar.extractfile(member)
            index = yaml.safe_load(extracted.read()) if extracted else None
    except (tarfile.TarError, EOFError, OSError, zlib.error, yaml.YAMLError, ValueError):
        return None
    finally:
        stream.seek(start)
    return index if isinstance(index, dict) else None


def _configs(index: Dict[str, Any]) -> List[Any]:
    """The instance's config and each snapshot's, in a backup's index."""
    config = index.get("config") or {}
    configs = [(config.get(kind) or {}).get("config") for kind in ("container", "instance")]
    configs += [(snapshot or {}).get("config") for snapshot in config.get("snapshots") or ()]
    return configs


class _Counted:
    """A file object for requests to send: read as it is sent, counted, with
    its length (so the upload has a ``Content-Length``).

    Read :data:`_UPLOAD_PIECE` at a time whatever the sender asks: http.client
    asks 16 KiB, and over TLS each piece costs a write (and apitx's deadline
    check): 12,000 of them for 200 MB took 0.7 s here, 1 MiB pieces a tenth
    of that. Memory stays at one piece.
    """

    def __init__(self, stream: IO[bytes], report: Any) -> None:
        self.stream, self.report = stream, report
        self.sent = 0
        self._reported = 0.0
        self.total = _left(stream)

    def __len__(self) -> int:
        return self.total if self.total is not None else 0

    def sendable(self) -> Union[_Counted, Iterator[bytes]]:
        """What to give requests: this file, sent with its length as
        ``Content-Length``; or, when the length is unknown (a pipe), its
        pieces, which requests sends chunked (a length of 0 would make it
        announce an empty body, and LXD answer "EOF")."""
        if self.total is not None:
            return self
        return iter(lambda: self.read(_UPLOAD_PIECE), b"")

    def read(self, size: int = -1) -> bytes:
        piece = self.stream.read(max(size, _UPLOAD_PIECE))
        self.sent += len(piece)
        now = time.monotonic()
        if now - self._reported >= 1.0 or not piece:
            self._reported = now
            self.report(self.sent, self.total)
        return piece


def _left(stream: IO[bytes]) -> Optional[int]:
    """The bytes ``stream`` holds from where it stands to its end, or None
    when it cannot seek (a pipe).

    Measured by seeking, not by ``os.fstat``: an in-memory file
    (``io.BytesIO``) has no descriptor, and a length of 0 made requests send
    ``Content-Length: 0``, so LXD read an empty backup ("EOF").
    """
    try:
        if not stream.seekable():
            return None
        here = stream.tell()
        end = stream.seek(0, os.SEEK_END)
        stream.seek(here)
    except (AttributeError, OSError, ValueError):
        return None
    return end - here


def _download(api: Client, url: str, out: IO[bytes], reader: ProgressReader,
              progress: Optional[ProgressCallback]) -> int:
    try:
        answer = api.request("GET", url, stream=True)
    except APITXError as exc:
        raise failed_on("source", f"downloading the backup from {api.endpoint.display} "
                        f"failed: {exc}; nothing was written", str(exc)) from exc
    length = answer.response.headers.get("Content-Length")
    total = int(length) if length and length.isdigit() else None
    written = 0
    try:
        for piece in counted(answer.iter_content(_CHUNK), "source", reader, progress,
                             "download", "received", total):
            out.write(piece)
            written += len(piece)
    except SideFailure as failure:
        raise failed_on("source", f"downloading the backup from {api.endpoint.display} broke "
                        f"after {written} bytes: {failure.exc}; a path given is left as it was",
                        str(failure.exc)) from failure.exc
    return written
