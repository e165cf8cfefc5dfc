"""The typed HTTP verbs, written once for every client and resource.

``get``, ``head``, ``delete``, ``post``, ``put`` and ``patch`` with their
keyword-only, typed arguments: :class:`~apitx.API`, :class:`~apitx.AsyncAPI`
and :class:`~apitx.Resource` inherit them from :class:`Verbs`, each saying
only how one call is made (``_call``). ``R`` is what a call returns: an
``APIResult``, or (async) an awaitable of one.

Example:

>>> import asyncio
>>> from apitx import API, AsyncAPI
>>> api = API.factory()
>>> api.get('instances', params={'recursion': 1}).ok     # request('GET', 'instances', ...)
True
>>> api.instances[c1].get().metadata['name'] == c1      # the resource's own path
True
>>> async def main() -> bool:                           # the same, awaited
...     async with AsyncAPI.factory() as aapi:
...         return (await aapi.get('instances')).ok
>>> asyncio.run(main())
True
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar, Union

from ._config import TimeoutLike
from ._types import USE_DEFAULT, Headers, Params, UseDefault

#: What a call returns (an APIResult, or an awaitable of one).
R = TypeVar("R", covariant=True)

#: A request's own timeout, or the API's (``USE_DEFAULT``).
RequestTimeout = Union[TimeoutLike, UseDefault]


class Verbs(Generic[R]):
    """The verbs as calls of ``_call(method, url, **options)``; ``url`` is an
    API path (a resource's: relative to it, ``''`` being itself)."""

    __slots__ = ()

    def _call(self, method: str, url: str, **options: Any) -> R:
        raise NotImplementedError  # pragma: no cover - every subclass makes its calls

    def get(self, url: str = "", *, params: Params = None, headers: Headers = None,
            timeout: RequestTimeout = USE_DEFAULT, stream: bool = False,
            validate: bool = True) -> R:
        """``request('GET', url, ...)``."""
        return self._call("GET", url, params=params, headers=headers, timeout=timeout,
                          stream=stream, validate=validate)

    def head(self, url: str = "", *, params: Params = None, headers: Headers = None,
             timeout: RequestTimeout = USE_DEFAULT, validate: bool = True) -> R:
        """``request('HEAD', url, ...)``."""
        return self._call("HEAD", url, params=params, headers=headers, timeout=timeout,
                          validate=validate)

    def delete(self, url: str = "", *, params: Params = None, json: Any = None,
               headers: Headers = None, timeout: RequestTimeout = USE_DEFAULT,
               validate: bool = True) -> R:
        """``request('DELETE', url, ...)``."""
        return self._call("DELETE", url, params=params, json=json, headers=headers,
                          timeout=timeout, validate=validate)

    def post(self, url: str = "", *, params: Params = None, json: Any = None,
             data: Any = None, headers: Headers = None, timeout: RequestTimeout = USE_DEFAULT,
             stream: bool = False, validate: bool = True) -> R:
        """``request('POST', url, ...)``."""
        return self._call("POST", url, params=params, json=json, data=data, headers=headers,
                          timeout=timeout, stream=stream, validate=validate)

    def put(self, url: str = "", *, params: Params = None, json: Any = None,
            data: Any = None, headers: Headers = None, timeout: RequestTimeout = USE_DEFAULT,
            stream: bool = False, validate: bool = True) -> R:
        """``request('PUT', url, ...)``."""
        return self._call("PUT", url, params=params, json=json, data=data, headers=headers,
                          timeout=timeout, stream=stream, validate=validate)

    def patch(self, url: str = "", *, params: Params = None, json: Any = None,
              data: Any = None, headers: Headers = None, timeout: RequestTimeout = USE_DEFAULT,
              stream: bool = False, validate: bool = True) -> R:
        """``request('PATCH', url, ...)``."""
        return self._call("PATCH", url, params=params, json=json, data=data, headers=headers,
                          timeout=timeout, stream=stream, validate=validate)
