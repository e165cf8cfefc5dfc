"""Navigation: ``api.storage_pools['default'].volumes.get()``.

A :class:`Resource` is a path on one :class:`~apitx.API` and nothing else:
building one sends nothing and costs no connection. Only its HTTP methods
(``get``, ``post``, ``put``, ``patch``, ``delete``, ``head``) send, and they
go through :meth:`API.request` — same session, timeout, tracing, validation,
and the same :class:`~apitx.APIResult` with its ``wait()``.

Rules, each against a fault of an earlier client:

- an attribute is a segment, with ``_`` turned into ``-`` (LXD's paths use
  dashes: ``storage_pools`` is ``storage-pools``);
- ``[item]`` and ``/ item`` are one segment, percent-quoted whole, so a name
  with ``/``, a space or non-ASCII letters never becomes two segments, and a
  segment called ``get`` (slumber's collision) is ``res['get']``;
- names starting with ``_`` raise AttributeError (maxclient *returned* one,
  so typos and ``hasattr`` passed silently), so ``copy``, ``pickle`` and
  ``hasattr`` see an ordinary object;
- a typo such as ``api.instancse`` cannot be caught before sending: any name
  may be a path segment, and the server's 404 is the answer.

Example::

    api.instances['c1'].state.put(json={'action': 'start'}).wait()
    api.storage_pools['default'].volumes.get(params={'recursion': 1})
    api.instances['get'].get(validate=False).status_code     # 404: a name, not a method
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, List, Union
from urllib.parse import quote

if TYPE_CHECKING:  # pragma: no cover
    from ._api import API
    from ._result import APIResult

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
        raise TypeError(f"a path segment is a str or int, got {item!r} "
                        f"({type(item).__name__})")
    text = str(item)
    if not text:
        raise ValueError("a path segment cannot be empty: give a name, e.g. api.instances['c1']")
    if text in (".", ".."):
        # quote() leaves dots alone, and HTTP clients resolve "." and ".."
        # segments away: a DELETE of item '..' would reach the collection's
        # parent. Encoded, it stays a name for the server to judge.
        return text.replace(".", "%2E")
    return quote(text, safe="")


class Resource:
    """A path on an :class:`~apitx.API`; see the module docstring for the rules.

    ``str(resource)`` is the path as it will be sent (``/1.0/instances/c1``).
    Two resources are equal when they are the same path on the same API.
    """

    __slots__ = ("_api", "_path")

    # ``_path`` is relative to the API's version root ('' is the root itself),
    # so API.url() applies the same URL rules as to any string path.
    def __init__(self, api: API, path: str) -> None:
        self._api = api
        self._path = path

    # -- navigation -----------------------------------------------------------

    def _child(self, segment: str) -> Resource:
        return Resource(self._api, f"{self._path}/{segment}" if self._path else segment)

    def __getattr__(self, name: str) -> Resource:
        return self._child(attribute_segment(name))

    def __getitem__(self, item: Segment) -> Resource:
        return self._child(item_segment(item))

    def __truediv__(self, item: Segment) -> Resource:
        return self._child(item_segment(item))

    # __getitem__ alone makes Python iterate with res[0], res[1], ... forever
    # (and ``x in res`` likewise): a path is not a sequence.
    __iter__ = None

    # -- sending --------------------------------------------------------------

    def _request(self, method: str, *args: Any, **kwargs: Any) -> APIResult:
        return self._api.request(method, self._path, *args, **kwargs)

    def get(self, *args: Any, **kwargs: Any) -> APIResult:
        """``api.request('GET', <this path>, ...)``: same keyword arguments."""
        return self._request("GET", *args, **kwargs)

    def post(self, *args: Any, **kwargs: Any) -> APIResult:
        """``api.request('POST', <this path>, ...)``."""
        return self._request("POST", *args, **kwargs)

    def put(self, *args: Any, **kwargs: Any) -> APIResult:
        """``api.request('PUT', <this path>, ...)``."""
        return self._request("PUT", *args, **kwargs)

    def patch(self, *args: Any, **kwargs: Any) -> APIResult:
        """``api.request('PATCH', <this path>, ...)``."""
        return self._request("PATCH", *args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> APIResult:
        """``api.request('DELETE', <this path>, ...)``."""
        return self._request("DELETE", *args, **kwargs)

    def head(self, *args: Any, **kwargs: Any) -> APIResult:
        """``api.request('HEAD', <this path>, ...)``."""
        return self._request("HEAD", *args, **kwargs)

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

