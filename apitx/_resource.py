"""Navigation: ``api.storage_pools['default'].volumes.get()``.

A :class:`Resource` is a path on one :class:`~apitx.API` and nothing else:
building one sends nothing and costs no connection. Only its HTTP methods
(``get``, ``post``, ``put``, ``patch``, ``delete``, ``head``) send, and they
go through :meth:`API.request` — same session, timeout, tracing, validation,
and the same :class:`~apitx.APIResult` with its ``wait()``.

Rules:

- an attribute is a segment, with ``_`` turned into ``-`` (LXD's paths use
  dashes: ``storage_pools`` is ``storage-pools``);
- ``[item]`` and ``/ item`` are one segment, percent-quoted whole, so a name
  with ``/``, a space or non-ASCII letters never becomes two segments, and a
  segment named like a method is reachable as ``res['get']``;
- names starting with ``_`` raise AttributeError (never return a resource),
  so typos of private names, ``copy``, ``pickle`` and ``hasattr`` see an
  ordinary object;
- a typo such as ``api.instancse`` cannot be caught before sending: any name
  may be a path segment, and the server's 404 is the answer.

>>> from apitx import API
>>> api = API.factory()
>>> api.instances[c1].state.get().metadata['status']
'Running'
>>> api.storage_pools['default'].volumes.get(params={'recursion': 1}).metadata[0]['type']
'...'
>>> api.instances['get'].get(validate=False).status_code     # 404: a name, not a method
404
"""

from __future__ import annotations

from typing import Any, List, Protocol, TypeVar, Union
from urllib.parse import quote

from ._config import TimeoutLike
from ._endpoint import Endpoint
from ._exceptions import RequestError, RequestTypeError
from ._types import Headers, Params, UseDefault
from ._verbs import Verbs

#: What the API's verbs return: an APIResult (sync), or an awaitable of one (async).
R = TypeVar("R", covariant=True)


class Requester(Protocol[R]):
    """What a resource needs of its API: send a request, and say where paths go."""

    @property
    def endpoint(self) -> Endpoint: ...

    def url(self, url: str) -> str: ...

    def request(self, method: str, url: str, *, params: Params = None, json: Any = None,
                data: Any = None, headers: Headers = None,
                timeout: Union[TimeoutLike, UseDefault] = ..., stream: bool = False,
                validate: bool = True, follow_redirects: bool = False) -> R: ...

#: The only public names a Resource has; everything else is a path segment.
METHODS = ("get", "post", "put", "patch", "delete", "head")

Segment = Union[str, int]


def attribute_segment(name: str) -> str:
    """The segment an attribute name stands for; AttributeError for ``_names``.

    Raising (not returning) AttributeError is what lets ``hasattr``, ``copy``,
    ``pickle`` and ``__length_hint__`` probes work on a navigable object.
    """
    if name.startswith("_"):
        raise AttributeError(name)
    return name.replace("_", "-")


def item_segment(item: Segment) -> str:
    """One path segment from ``[item]`` or ``/ item``, quoted whole.

    >>> item_segment('a/b c')
    'a%2Fb%20c'
    """
    if isinstance(item, bool) or not isinstance(item, (str, int)):
        raise RequestTypeError(f"a path segment is a str or int, got {item!r} "
                               f"({type(item).__name__})")
    text = str(item)
    if not text:
        raise RequestError("a path segment cannot be empty: give a name, e.g. api.instances['c1']")
    if text in (".", ".."):
        # quote() leaves dots alone, and HTTP clients resolve "." and ".."
        # segments away: a DELETE of item '..' would reach the collection's
        # parent. Encoded, it stays a name for the server to judge.
        return text.replace(".", "%2E")
    return quote(text, safe="")


class Resource(Verbs[R]):
    """A path on an :class:`~apitx.API`; see the module docstring for the rules.

    ``str(resource)`` is the path as it will be sent (``/1.0/instances/c1``).
    Two resources are equal when they are the same path on the same API.
    """

    __slots__ = ("_api", "_path")

    # ``_path`` is relative to the API's version root ('' is the root itself),
    # so API.url() applies the same URL rules as to any string path.
    def __init__(self, api: Requester[R], path: str) -> None:
        self._api = api
        self._path = path

    # -- navigation -----------------------------------------------------------

    def _child(self, segment: str) -> Resource[R]:
        return Resource(self._api, f"{self._path}/{segment}" if self._path else segment)

    def __getattr__(self, name: str) -> Resource[R]:
        return self._child(attribute_segment(name))

    def __getitem__(self, item: Segment) -> Resource[R]:
        return self._child(item_segment(item))

    def __truediv__(self, item: Segment) -> Resource[R]:
        return self._child(item_segment(item))

    # __getitem__ alone makes Python iterate with res[0], res[1], ... forever
    # (and ``x in res`` likewise): a path is not a sequence.
    __iter__ = None

    # -- sending: the verbs of Verbs, on this path (or a path below it) ------

    def _call(self, method: str, url: str, **options: Any) -> R:
        if not isinstance(url, str):
            raise RequestTypeError(f"{method.lower()}({url!r}): a resource's verbs take an "
                                   "optional path below it as a string, then keyword "
                                   "arguments (params=...); nothing was sent")
        path = self._path if not url else f"{self._path}/{url}" if self._path else url
        return self._api.request(method, path, **options)

    # -- plumbing -------------------------------------------------------------

    def __dir__(self) -> List[str]:
        # Tab completion offers what a Resource does, not every possible name.
        return list(METHODS)

    def __str__(self) -> str:
        return self._api.url(self._path)[len(self._api.endpoint.base_url):]

    def __repr__(self) -> str:
        return f"<Resource {self._api.endpoint.describe_url(self._api.url(self._path))}>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Resource):
            return NotImplemented
        return self._api is other._api and self._path == other._path

    def __hash__(self) -> int:
        return hash((id(self._api), self._path))

