"""Render one HTTP exchange for people (text) and machines (JSON), safely.

Pure functions over an :class:`Exchange`, a snapshot of what was sent and
received. They never raise on any input (a property test feeds them
arbitrary bytes, headers and JSON), never read a stream the caller owns,
and never show a secret unless :attr:`RenderOptions.unsafe` says so.

Every rendering of apitx goes through here: DEBUG traces,
``request_summary()`` / ``response_summary()``, the ``.transaction`` of
exceptions, and the one request line every message starts with
(:func:`request_line`).

>>> from apitx import API, RenderOptions
>>> result = API.factory().get('instances/nope', validate=False)
>>> print(render_text(result.exchange(), RenderOptions()))
unix:/var/lib/lxd/unix.socket GET /1.0/instances/nope ... ms
HTTP/404 Not Found
{
    "type": "error",
    "status": "",
    "status_code": 0,
    "operation": "",
    "error_code": 404,
    "error": "Instance not found",
    "metadata": null
}
------------------------------------------------------------------------
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Mapping, Optional, Tuple
from urllib.parse import parse_qsl, urlencode

import requests

from ._config import RenderOptions
from ._endpoint import Endpoint, path_and_query
from ._redact import (REDACTED, is_secret_header, redact, redact_free_text, redact_headers,
                      redact_url)
from ._value import Value

STREAMED = "<streamed body, not read>"
SEPARATOR = "-" * 72

#: Headers requests adds by itself: showing them on every transaction is noise,
#: and curl sends its own.
_DEFAULT_HEADERS = {name.lower(): value for name, value in requests.utils.default_headers().items()}
#: Headers computed from the request itself (a stale copy in a curl line would
#: corrupt the request), and Connection, meaningless for one request.
_COMPUTED_HEADERS = frozenset({"content-length", "host", "connection", "transfer-encoding"})


class Exchange(Value):
    """What a renderer needs of one transaction, and nothing that can block.

    ``request_body`` is bytes, str, None, or anything else for a body that is
    streamed (a file, a generator); ``response_body`` is None when the
    response was streamed and not read.
    """

    endpoint: Endpoint
    method: str
    url: str
    request_headers: Mapping[str, str]
    request_body: Any
    status: Optional[int]
    reason: str
    response_headers: Mapping[str, str]
    response_body: Optional[bytes]
    seq: Optional[int]
    elapsed: Optional[float]
    waited: Optional[float]
    #: The client certificate and server trust the request was sent with, for curl lines.
    cert: Any
    verify: Any

    def __init__(self, endpoint: Endpoint, method: str, url: str,
                 request_headers: Optional[Mapping[str, str]] = None, request_body: Any = None,
                 status: Optional[int] = None, reason: str = "",
                 response_headers: Optional[Mapping[str, str]] = None,
                 response_body: Optional[bytes] = b"", seq: Optional[int] = None,
                 elapsed: Optional[float] = None, waited: Optional[float] = None,
                 cert: Any = None, verify: Any = True) -> None:
        self._set(endpoint=endpoint, method=method, url=url,
                  request_headers={} if request_headers is None else request_headers,
                  request_body=request_body, status=status, reason=reason,
                  response_headers={} if response_headers is None else response_headers,
                  response_body=response_body, seq=seq, elapsed=elapsed, waited=waited,
                  cert=cert, verify=verify)

    @classmethod
    def from_request(cls, request: requests.PreparedRequest, endpoint: Endpoint,
                     cert: Any = None, verify: Any = True) -> Exchange:
        """The request half of an exchange: a request prepared, sent or not."""
        return cls(endpoint=endpoint, method=request.method or "", url=request.url or "",
                   request_headers=request.headers, request_body=request.body,
                   cert=cert, verify=verify)

    @classmethod
    def from_response(cls, response: requests.Response, endpoint: Endpoint, *,
                      body_read: bool, cert: Any = None, verify: Any = True,
                      seq: Optional[int] = None, elapsed: Optional[float] = None,
                      waited: Optional[float] = None) -> Exchange:
        """A whole exchange; the response body only when it was read (a
        ``stream=True`` body is the caller's, and is never read here)."""
        request = response.request
        return cls(endpoint=endpoint, method=request.method or "", url=request.url or "",
                   request_headers=request.headers, request_body=request.body,
                   status=response.status_code, reason=response.reason or "",
                   response_headers=response.headers,
                   response_body=response.content if body_read else None,
                   seq=seq, elapsed=elapsed, waited=waited, cert=cert, verify=verify)

    @property
    def path(self) -> str:
        """Path and query string as sent."""
        return path_and_query(self.url)


# -- text -------------------------------------------------------------------------

def render_text(exchange: Exchange, options: RenderOptions) -> str:
    """The whole transaction: header line, request, response, separator."""
    lines = [header_line(exchange, options)]
    lines += _request_lines(exchange, options)
    lines += _response_lines(exchange, options)
    lines.append(SEPARATOR)
    return "\n".join(lines)


def header_line(exchange: Exchange, options: RenderOptions) -> str:
    """``#3 unix:/var/lib/lxd/unix.socket GET /1.0/instances 1.2 ms``."""
    parts = [f"#{exchange.seq}"] if exchange.seq is not None else []
    parts += [exchange.endpoint.origin, exchange.method, _shown_path(exchange, options)]
    if exchange.elapsed is not None:
        parts.append(f"{exchange.elapsed * 1000:.1f} ms")
    if exchange.waited is not None:
        parts.append(f"(waited {exchange.waited * 1000:.1f} ms in total)")
    return " ".join(parts)


def request_line(exchange: Exchange, options: RenderOptions) -> str:
    """``METHOD readable-url``, query included, secrets redacted unless unsafe:
    the first words of every message about a request.

    >>> request_line(Exchange(Endpoint.parse('/s'), 'GET', 'http+unix://lxd/1.0?x=1'), RenderOptions())
    'GET unix:/s /1.0?x=1'
    """
    return f"{exchange.method.upper()} {exchange.endpoint.describe(exchange.path, options.unsafe)}"


def render_request(exchange: Exchange, options: RenderOptions) -> str:
    """The request line, the non-default headers, then the body."""
    return "\n".join([request_line(exchange, options)] + _request_lines(exchange, options))


def render_response(exchange: Exchange, options: RenderOptions) -> str:
    """``HTTP/<status> <reason>``, then the body."""
    return "\n".join(_response_lines(exchange, options))


def _request_lines(exchange: Exchange, options: RenderOptions) -> List[str]:
    headers = shown_request_headers(exchange.request_headers, options)
    lines = [f"{name}: {value}" for name, value in headers.items()]
    body = render_body(exchange.request_body, content_type_of(exchange.request_headers), options)
    return lines + ([body] if body else [])


def _response_lines(exchange: Exchange, options: RenderOptions) -> List[str]:
    status = f"HTTP/{exchange.status} {exchange.reason}".rstrip()
    body = (STREAMED if exchange.response_body is None else
            render_body(exchange.response_body, content_type_of(exchange.response_headers), options))
    return [status] + ([body] if body else [])


def shown_request_headers(headers: Mapping[str, str], options: RenderOptions) -> Dict[str, str]:
    """The request headers worth showing (and passing to curl): not requests'
    own defaults unless the caller changed them, nor the computed ones;
    redacted unless unsafe."""
    shown = {str(name): str(value) for name, value in headers.items()
             if str(name).lower() not in _COMPUTED_HEADERS
             and _DEFAULT_HEADERS.get(str(name).lower()) != value}
    return shown if options.unsafe else redact_headers(shown)


def _shown_path(exchange: Exchange, options: RenderOptions) -> str:
    return exchange.path if options.unsafe else redact_url(exchange.path)


# -- bodies ----------------------------------------------------------------------

_TEXT_TYPES = ("text/", "json", "xml", "yaml", "javascript", "x-www-form-urlencoded")


def render_body(body: Any, content_type: str, options: RenderOptions) -> str:
    """A body as people should see it.

    JSON is indented by 4 in the server's key order, with secrets redacted;
    other text is shown as it is; binary (not UTF-8, or a non-text content
    type) as ``<binary N bytes, type>``; a file or generator body as
    ``<streamed body, not read>``. Text over ``max_body`` bytes is cut with
    ``…[truncated, N bytes total]``, N being the body's size on the wire.
    """
    if body is None:
        return ""
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogatepass")
    if not isinstance(body, (bytes, bytearray)):
        return STREAMED
    if not body:
        return ""
    size = len(body)
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind and not any(marker in kind for marker in _TEXT_TYPES):
        return f"<binary {size} bytes, {kind}>"
    try:
        text = bytes(body).decode("utf-8")
    except UnicodeDecodeError:
        return f"<binary {size} bytes, {kind or 'no content type'}>"
    shown = _structured(text, kind, options)
    encoded = shown.encode("utf-8")
    if len(encoded) > options.max_body:
        cut = encoded[:options.max_body].decode("utf-8", "ignore")
        return f"{cut}…[truncated, {size} bytes total]"
    return shown


def body_value(body: Any, content_type: str, options: RenderOptions) -> Any:
    """A body for the JSON format: the (redacted) JSON itself when it is JSON
    and small enough, else the text rendering."""
    if isinstance(body, (bytes, bytearray, str)) and 0 < len(body) <= options.max_body:
        data = _parse(body)
        if data is not _NOT_JSON:
            return data if options.unsafe else redact(data)
    shown = render_body(body, content_type, options)
    return shown or None


_NOT_JSON = object()


def _parse(body: Any) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError, TypeError):
        return _NOT_JSON


def _redacted(text: str, content_type: str, unsafe: bool) -> Tuple[Any, Any]:
    """A text body's secrets hidden, by the one rule every rendering uses.

    Returns ``(tree, shown)``: ``tree`` is the body's JSON (a dict or list)
    or ``_NOT_JSON``; ``shown`` is that tree with secret keys redacted, or
    the text with secret form fields redacted, or other text with its
    ``name=value`` secrets redacted (an error page quoting a password). JSON
    is tried whatever the declared type: a JSON body sent as a form or as
    text/plain must not escape redaction because of its label.
    """
    tree = _parse(text)
    if isinstance(tree, (dict, list)):
        return tree, tree if unsafe else redact(tree)
    if unsafe:
        return _NOT_JSON, text
    if "x-www-form-urlencoded" in content_type.lower():
        return _NOT_JSON, _redact_form(text)
    return _NOT_JSON, redact_free_text(text)


def _structured(text: str, kind: str, options: RenderOptions) -> str:
    """JSON indented and redacted; form fields redacted; other text as is."""
    tree, shown = _redacted(text, kind, options.unsafe)
    if tree is _NOT_JSON:
        return str(shown)
    try:
        return indented_json(shown)
    except RecursionError:
        # Pathologically deep JSON: the indenting encoder recurses in Python;
        # the compact one is C and goes deeper.
        try:
            return json.dumps(shown, ensure_ascii=False)
        except RecursionError:
            return "<JSON too deep to show>"


# json.dumps(indent=4) encodes in pure Python on CPython before 3.14 (the C
# encoder knows no indent), one generator per level yielding every comma,
# newline and value separately: it was a third of a traced GET /1.0, whose
# answer lists some 300 API extensions. indented_json() writes the same
# text with one recursive function, one list and the C string escaper, and
# a list of strings (most of such an answer) in one join. A property test
# holds it to json.dumps(indent=4, ensure_ascii=False) on arbitrary trees;
# anything but what json.loads makes goes to json.dumps itself.

_INDENT = " " * 4
_escape = json.encoder.encode_basestring  # the C one when CPython has it
_CONSTANTS = {True: "true", False: "false", None: "null"}


class _NotParsed(Exception):
    """A value json.loads never makes (a tuple, a non-str key, an object)."""


def indented_json(tree: Any) -> str:
    """``json.dumps(tree, indent=4, ensure_ascii=False)``, faster.

    >>> print(indented_json({"a": [1, "x"], "b": {}}))
    {
        "a": [
            1,
            "x"
        ],
        "b": {}
    }
    """
    parts: List[str] = []
    try:
        _indent_into(parts, tree, "\n")
    except _NotParsed:
        return json.dumps(tree, indent=4, ensure_ascii=False)
    return "".join(parts)


def _indent_into(parts: List[str], value: Any, newline: str) -> None:
    if isinstance(value, str):
        parts.append(_escape(value))
    elif isinstance(value, dict):
        if not value:
            parts.append("{}")
            return
        inner = newline + _INDENT
        separator = "{" + inner
        for key, item in value.items():
            if not isinstance(key, str):
                raise _NotParsed
            parts.append(separator + _escape(key) + ": ")
            _indent_into(parts, item, inner)
            separator = "," + inner
        parts.append(newline + "}")
    elif isinstance(value, list):
        if not value:
            parts.append("[]")
            return
        inner = newline + _INDENT
        try:  # a list of strings, in C; the escaper refuses anything else
            parts.append("[" + inner + ("," + inner).join(map(_escape, value)) + newline + "]")
            return
        except TypeError:
            pass
        separator = "[" + inner
        for item in value:
            parts.append(separator)
            _indent_into(parts, item, inner)
            separator = "," + inner
        parts.append(newline + "]")
    else:
        parts.append(_scalar(value))


def _scalar(value: Any) -> str:
    if value is None or value is True or value is False:
        return _CONSTANTS[value]
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        if value != value:
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "Infinity" if value > 0 else "-Infinity"
        return float.__repr__(value)
    raise _NotParsed


def redact_text(text: str, content_type: str) -> str:
    """A request body as text with its secrets redacted, kept byte for byte
    when there is nothing to redact (so a curl line sends what was sent)."""
    tree, shown = _redacted(text, content_type, unsafe=False)
    if tree is _NOT_JSON:
        return str(shown)
    return text if shown == tree else json.dumps(shown, ensure_ascii=False)


def _redact_form(text: str) -> str:
    """Form fields with secret names redacted, and credentials in the others'
    values (``db=postgres://u:<redacted>@h``); the text as it was when there
    is nothing to redact, so a curl line sends what was sent."""
    pairs = parse_qsl(text, keep_blank_values=True)
    shown = [(k, REDACTED if is_secret_header(k) else redact_free_text(v)) for k, v in pairs]
    return text if shown == pairs else urlencode(shown)


def content_type_of(headers: Mapping[str, str]) -> str:
    try:
        return str(headers.get("Content-Type") or headers.get("content-type") or "")
    except AttributeError:
        return ""


# -- JSON lines ---------------------------------------------------------------------

def render_json(exchange: Exchange, options: RenderOptions) -> str:
    """One JSON object, on one line, for machines and log pipelines."""
    response_body = (STREAMED if exchange.response_body is None else
                     body_value(exchange.response_body,
                                content_type_of(exchange.response_headers), options))
    record: Dict[str, Any] = {
        "seq": exchange.seq,
        "endpoint": exchange.endpoint.origin,
        "method": exchange.method,
        "path": _shown_path(exchange, options),
        "elapsed_ms": None if exchange.elapsed is None else round(exchange.elapsed * 1000, 3),
        "waited_ms": None if exchange.waited is None else round(exchange.waited * 1000, 3),
        "request": {
            "headers": shown_request_headers(exchange.request_headers, options),
            "body": body_value(exchange.request_body, content_type_of(exchange.request_headers),
                               options),
        },
        "response": {
            "status": exchange.status,
            "reason": exchange.reason,
            "headers": _shown_response_headers(exchange.response_headers, options),
            "body": response_body,
        },
    }
    if options.unsafe:
        record["unsafe"] = True
    try:
        return json.dumps(record, ensure_ascii=False)
    except (RecursionError, ValueError):
        record["request"]["body"] = record["response"]["body"] = "<JSON too deep to show>"
        return json.dumps(record, ensure_ascii=False)


def _shown_response_headers(headers: Mapping[str, str], options: RenderOptions) -> Dict[str, str]:
    shown = {str(name): str(value) for name, value in headers.items()}
    return shown if options.unsafe else redact_headers(shown)
