"""An instance's files for the async client: push and pull, streamed.

The rules of :mod:`apitx._files` (the server's header family, paths, what a
"Not Found" means, what a pull may copy), awaited. A push streams a local
file, a binary file object or an async iterable of bytes; a pull returns
the bytes, or streams them to a file object or a local path (replaced only
once the whole file has arrived).

>>> import asyncio, tempfile
>>> from pathlib import Path
>>> from apitx import AsyncAPI
>>> local = Path(tempfile.mkdtemp()) / 'busybox'
>>> async def main():
...     async with AsyncAPI.factory() as api:
...         files = api.files(c1)
...         await files.push('/tmp/motd', 'hello\\n', mode=0o644)
...         return await files.pull('/tmp/motd'), await files.pull('/bin/busybox', local)
>>> motd, count = asyncio.run(main())
>>> motd, count == local.stat().st_size
(b'hello\\n', True)
"""

from __future__ import annotations

import os
from typing import IO, Any, AsyncIterator, List, Optional, Union
from urllib.parse import quote

from .._atomic import atomic_write
from .._exceptions import APINotFoundException
from .._file_api import (Entry, entry_of, file_params, listing, missing, push_body, refuse_pull,
                         write_headers)
from ._client import AsyncClient
from ._result import AsyncAPIResult

#: Bytes per piece read of a pull.
PIECE = 1 << 16

#: What :meth:`AsyncFiles.push` takes besides what :meth:`apitx.Files.push`
#: takes: an async iterable of bytes.
AsyncSource = Union[bytes, str, "os.PathLike[str]", IO[bytes], AsyncIterator[bytes]]


class AsyncFiles:
    """The files of one instance (``api.files('c1')``), awaited."""

    def __init__(self, api: AsyncClient, instance: str, project: Optional[str] = None) -> None:
        self.api = api
        self.instance = instance
        self.project = project
        self._url = f"instances/{quote(instance, safe='')}/files"

    def __repr__(self) -> str:
        where = f" project={self.project}" if self.project else ""
        return f"<AsyncFiles {self.instance}{where} on {self.api.endpoint.display}>"

    async def push(self, path: str, source: AsyncSource, *, uid: Optional[int] = None,
                   gid: Optional[int] = None, mode: Optional[int] = None,
                   append: bool = False) -> None:
        """Write ``source`` to ``path`` (see :meth:`apitx.Files.push`); an async
        iterable of bytes is streamed too.

        >>> import asyncio, tempfile
        >>> from pathlib import Path
        >>> from apitx import AsyncAPI
        >>> conf = Path(tempfile.mkdtemp()) / 'app.conf'
        >>> _ = conf.write_text('debug = true\\n')
        >>> async def main():
        ...     async with AsyncAPI.factory() as api:
        ...         await api.files(c1).push('/tmp/app.conf', conf, mode=0o600)
        ...         return (await api.exec(c1, ['stat', '-c', '%a %s', '/tmp/app.conf'])).stdout
        >>> asyncio.run(main())
        b'600 13\\n'
        """
        body = source if hasattr(source, "__aiter__") else push_body(path, source)
        if isinstance(body, os.PathLike):
            with open(body, "rb") as opened:
                await self._write(path, "file", opened, uid, gid, mode, append)
        else:
            await self._write(path, "file", body, uid, gid, mode, append)

    async def pull(self, path: str, target: Any = None) -> Union[bytes, int]:
        """The file's bytes; or, given ``target`` (a binary file object or a
        local path), its bytes streamed there and their count.

        >>> import asyncio
        >>> from apitx import AsyncAPI
        >>> import io
        >>> copy = io.BytesIO()
        >>> async def main():
        ...     async with AsyncAPI.factory() as api:
        ...         await api.files(c1).push('/tmp/hello', b'hello\\n')
        ...         return await api.files(c1).pull('/tmp/hello'), await api.files(c1).pull(
        ...             '/tmp/hello', copy)
        >>> asyncio.run(main()), copy.getvalue()
        ((b'hello\\n', 6), b'hello\\n')
        """
        if isinstance(target, (str, os.PathLike)):
            # As Files.pull: opened first (a target that cannot be written
            # costs no request), replaced only once the whole file arrived.
            with atomic_write(target) as out:
                return await self.pull(path, out)
        result = await self._send("GET", path, stream=target is not None)
        refuse_pull(await self._entry(path, result), result, self.instance)
        if target is None:
            return bytes(result.response.content)
        count = 0
        async for piece in result.aiter_content(PIECE):
            target.write(piece)
            count += len(piece)
        return count

    async def mkdir(self, path: str, *, uid: Optional[int] = None, gid: Optional[int] = None,
                    mode: int = 0o755) -> None:
        """Make the directory ``path`` (see :meth:`apitx.Files.mkdir`)."""
        await self._write(path, "directory", b"", uid, gid, mode, False)

    async def symlink(self, path: str, target: str) -> None:
        """Make ``path`` a symbolic link to ``target``."""
        await self._write(path, "symlink", target.encode("utf-8"), None, None, None, False)

    async def delete(self, path: str) -> None:
        """Delete a file, a symlink or an empty directory."""
        await self._send("DELETE", path)

    async def listdir(self, path: str) -> List[str]:
        """The names in the directory ``path``."""
        result = await self._send("GET", path, stream=False)
        return listing(await self._entry(path, result), result, self.instance)

    # -- the wire -----------------------------------------------------------------

    async def _write(self, path: str, kind: str, body: Any, uid: Optional[int],
                     gid: Optional[int], mode: Optional[int], append: bool) -> None:
        prefix = (await self.api.server).header_prefix
        await self._send("POST", path, data=body,
                         headers=write_headers(prefix, kind, uid, gid, mode, append))

    async def _send(self, method: str, path: str, **options: Any) -> AsyncAPIResult:
        params = file_params(path, self.project)
        try:
            return await self.api.request(method, self._url, params=params, **options)
        except APINotFoundException as exc:
            raise missing(exc, method, path, self.instance) from None

    async def _entry(self, path: str, result: AsyncAPIResult) -> Entry:
        return entry_of((await self.api.server).header_prefix, path, result.response.headers)

