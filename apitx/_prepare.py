"""The rules a request must meet before it is sent, as pure functions.

Shared by the sync and async clients: how an API path becomes a URL, what
counts as a method and as a header HTTP can carry, and which defaults
(``project``, ``target``) a request gets. Nothing here sends, reads or
imports an HTTP library; each check raises :class:`~apitx.RequestError`
(or :class:`~apitx.RequestTypeError`) saying what to change and that
nothing was sent.

>>> join_url(Root('http+unix://lxd', '1.0', 'unix:/var/lib/lxd/unix.socket'), 'instances')
'http+unix://lxd/1.0/instances'
>>> with_defaults('http+unix://lxd/1.0/instances', {'recursion': 1}, project='web', target=None)
[('recursion', 1), ('project', 'web')]
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable, Iterable, List, Mapping, NamedTuple, Optional, Tuple
from urllib.parse import parse_qsl, urlencode, urlsplit

from ._config import Timeout, TimeoutLike
from ._exceptions import EndpointError, RequestError, RequestTypeError, SettingsError
from ._types import Params


class Root(NamedTuple):
    """Where relative paths go: the endpoint's base URL, the version prefix
    (``'1.0'``, or None for none), and the endpoint as people read it."""

    base_url: str
    version: Optional[str]
    display: str


def join_url(root: Root, url: str) -> str:
    """The full URL for an API path.

    ``''`` and ``'/'`` mean the version root (``/1.0``, never ``/1.0/``,
    which LXD answers 404); ``'instances'`` is relative to it; a path
    starting with ``/`` (such as the operation URLs LXD returns) is used as
    it is. A full URL is refused: the server is the endpoint's.

    >>> join_url(Root('https://h:8443', '1.0', 'https://h:8443'), '')
    'https://h:8443/1.0'
    """
    if not isinstance(url, str):
        raise RequestTypeError(f"url must be a path string such as 'instances', got {url!r}; "
                               "nothing was sent")
    versioned = root.base_url + (f"/{root.version}" if root.version else "")
    if url in ("", "/"):
        return versioned if root.version else root.base_url + "/"
    if url.startswith("/"):
        return root.base_url + url
    if "://" in url.split("?", 1)[0]:
        raise EndpointError(
            f"url {url!r} is a full URL: apitx takes paths ('instances', "
            f"'/1.0/instances'); the server is set by the API's endpoint ({root.display})")
    return f"{versioned}/{url}"


#: A method: a bare word of letters (HTTP allows more; LXD uses these, and
#: requests would send an empty one as a request with no method).
METHOD = re.compile(r"[A-Za-z]+")
#: The methods LXD uses, as they are usually written.
_USUAL_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"})
#: A header name: an RFC 7230 token.
TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def checked_method(method: Any) -> str:
    """``method`` upper-cased, or the :class:`RequestError` saying why it is none.

    >>> checked_method('get')
    'GET'
    """
    # Every request's path: no regex for the usual ones. The type first: a
    # list or dict is unhashable, and the set lookup would raise TypeError.
    if isinstance(method, str) and method in _USUAL_METHODS:
        return method
    if not isinstance(method, str):
        raise RequestTypeError(f"method {method!r} is not a string: give an HTTP method "
                               "such as 'GET'; nothing was sent")
    if not METHOD.fullmatch(method):
        raise RequestError(f"method {method!r} is not an HTTP method (GET, POST, PUT, "
                           "PATCH, DELETE, HEAD...); nothing was sent")
    return method.upper()


def header_problem(name: Any, value: Any) -> Optional[str]:
    """What is wrong with one header as HTTP would send it, or None.

    HTTP sends names that are tokens and values in Latin-1 (http.client
    would raise UnicodeEncodeError mid-send). The value itself is never
    quoted: a header is often a token.
    """
    if not isinstance(name, (str, bytes)) or not TOKEN.fullmatch(
            name if isinstance(name, str) else name.decode("latin-1")):
        return "has a name that is not an HTTP token (letters, digits and !#$%&'*+.^_`|~-)"
    if isinstance(value, str):
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            return ("has a value HTTP cannot carry (headers are Latin-1): encode it, e.g. "
                    "percent-encoding or base64")
    return None


def arguments_problem(data: Any, headers: Any) -> Optional[str]:
    """What is wrong with a request's ``data=`` or ``headers=`` as types, or
    None. Neither value is quoted: a body or a header is often a secret.

    >>> arguments_problem(3.5, None)
    'data= is a float: give bytes, str, a binary file or an iterator of bytes'
    """
    if data is not None and (isinstance(data, (bool, int, float)) or not (
            hasattr(data, "read") or isinstance(data, Iterable))):
        return (f"data= is a {type(data).__name__}: give bytes, str, a binary file or an "
                "iterator of bytes")
    if headers is not None and not isinstance(headers, Mapping):
        return f"headers= is a {type(headers).__name__}: give a mapping of names to values"
    return None


def shown_name(name: Any) -> str:
    """A header name as a message may show it (never its value)."""
    return repr(name) if isinstance(name, str) and TOKEN.fullmatch(name) else "(name not shown)"


def pairs(params: Params) -> List[Tuple[str, Any]]:
    """Query parameters as ``(name, value)`` pairs, in the order given."""
    if params is None:
        return []
    if isinstance(params, (str, bytes)):
        text = params.decode() if isinstance(params, bytes) else params
        return list(parse_qsl(text, keep_blank_values=True))
    if isinstance(params, Mapping):
        return list(params.items())
    try:
        return [(name, value) for name, value in params]
    except (TypeError, ValueError):
        raise RequestTypeError(f"params={params!r}: give a mapping, (name, value) pairs or "
                               "a query string; nothing was sent") from None


def with_defaults(url: str, params: Params, *, project: Optional[str],
                  target: Optional[str]) -> Params:
    """``params`` with the API's ``project`` and ``target`` added, unless the
    request names them (in ``params`` or already in ``url``); a request for
    ``all-projects`` gets no project. As LXD's Go client does.

    >>> with_defaults('/1.0/instances?project=a', None, project='b', target='m2')
    [('target', 'm2')]
    """
    if project is None and target is None:
        return params
    given = pairs(params)
    named = {name for name, _ in given} | {
        name for name, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True)}
    if project is not None and not named & {"project", "all-projects"}:
        given.append(("project", project))
    if target is not None and "target" not in named:
        given.append(("target", target))
    return given


def request_timeout(value: TimeoutLike, line: Callable[[], str]) -> Timeout:
    """A request's own ``timeout=`` as a :class:`Timeout`, or the
    :class:`RequestError` (``RequestTypeError``) that starts with its request line."""
    try:
        return Timeout.coerce(value)
    except SettingsError as exc:
        kind = RequestTypeError if isinstance(exc, TypeError) else RequestError
        raise kind(f"{line()}: {exc}; nothing was sent") from None


def finite_seconds(value: Any, what: str) -> Optional[float]:
    """A timeout in seconds that must be a finite number > 0, or None for no
    limit; anything else is the :class:`RequestError` that says so.

    >>> finite_seconds(5, 'exec(timeout=...)')
    5.0
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RequestTypeError(f"{what}: {value!r} is not a number of seconds; give one > 0, "
                               "or None for no limit; nothing was sent")
    if not math.isfinite(value) or value <= 0:
        raise RequestError(f"{what}: {value!r} is not a number of seconds > 0; give one, or "
                           "None for no limit; nothing was sent")
    return float(value)


def encode_query(params: Params) -> str:
    """``params`` as a query string, the way requests encodes them (so both
    clients send, and trace, the same URL): UTF-8, a list of values repeats
    the name, None values are left out; a string is taken as it is.

    >>> encode_query([('recursion', 1), ('filter', 'name eq c1')])
    'recursion=1&filter=name+eq+c1'
    """
    if params is None:
        return ""
    if isinstance(params, (str, bytes)):
        return params.decode() if isinstance(params, bytes) else params
    encoded: List[Tuple[Any, Any]] = []
    for name, values in pairs(params):
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            values = [values]
        for value in values:
            if value is not None:
                encoded.append((name.encode("utf-8") if isinstance(name, str) else name,
                                value.encode("utf-8") if isinstance(value, str) else value))
    return urlencode(encoded, doseq=True)


def with_query(url: str, params: Params) -> str:
    """``url`` with ``params`` added to its query (see :func:`encode_query`)."""
    if params is None:
        return url
    query = encode_query(params)
    if not query:
        return url
    return f"{url}{'&' if '?' in url else '?'}{query}"
