"""LXD's rules for reading an answer, as pure functions over plain data.

Every JSON answer of an LXD-style server is an *envelope*: ``type`` (``sync``,
``async`` or ``error``), ``status_code``, ``error_code``, ``error``,
``operation`` and ``metadata``. An operation object (an async answer's
``metadata``, or the answer to ``GET /1.0/operations/<id>``) has its own
``status_code`` and ``err``. This module knows what those fields mean and
nothing else: no HTTP library, no I/O, no exceptions of its own. The result
layer turns its verdicts into exceptions.

>>> data = parse_json(b'{"type": "error", "error_code": 404, "error": "not found"}')
>>> top_failure(data, 404)
Failure(status_code=404, not_found=True)
>>> server_message(data)
'not found'
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any, Callable, Dict, List, NamedTuple, Optional

from ._lazy import LazyPattern
from ._redact import redact_free_text

#: LXD operation status codes below 200 (Created 100, Started 101, Running
#: 103, Cancelling 104, Pending 105, …) mean "not finished"; 200 is Success;
#: 400 Failure and 401 Cancelled are the failures.
SUCCESS = 200
FAILURE_FLOOR = 400


class Failure(NamedTuple):
    """What a failed answer says: the status code that failed, and whether it
    means "not found"."""

    status_code: int
    not_found: bool


def status_code(value: Any) -> Optional[int]:
    """A status or error code as LXD sends it (an int; a bool is not one), else None.

    >>> status_code(103), status_code(True), status_code("400")
    (103, None, None)
    """
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def operation_code(op: Any) -> Optional[int]:
    """The status code of an operation object, or None when ``op`` is not one."""
    return status_code(op.get("status_code")) if isinstance(op, dict) else None


def is_running(op: Any) -> bool:
    """True for an operation object whose status code says it has not ended."""
    code = operation_code(op)
    return code is not None and code < SUCCESS


def declares_json(content_type: str) -> bool:
    """True when a ``Content-Type`` declares JSON (``application/json``,
    ``…+json``), as every LXD envelope does. Only such answers are parsed
    and judged: a pulled file is data whatever it holds.

    >>> declares_json('application/json; charset=utf-8'), declares_json('text/plain')
    (True, False)
    """
    return "json" in content_type.lower()


#: The envelope types LXD sends.
ENVELOPE_TYPES = frozenset({"sync", "async", "error"})


def is_envelope(data: Any) -> bool:
    """True when parsed JSON has the shape of an LXD answer (a ``type`` of
    ``sync``, ``async`` or ``error``). Other JSON (a pulled file, an exec
    log that happens to hold ``error_code``) is data, never a verdict.

    >>> is_envelope({'type': 'sync', 'metadata': {}}), is_envelope({'error_code': 404})
    (True, False)
    """
    # Compared as a string first: a type of [] or {} is unhashable (found by
    # fuzzing: it raised TypeError from validate()).
    kind = data.get("type") if isinstance(data, dict) else None
    return isinstance(kind, str) and kind in ENVELOPE_TYPES


def top_failure(data: Any, http_status: int) -> Optional[Failure]:
    """The failure an answer states at its top level, or None.

    HTTP 404, or ``error_code`` 404 in an envelope, is "not found"; any
    other HTTP status >= 400, or an envelope of ``type: error``, is a failure
    whose code is ``error_code`` when it is a real error code, else the HTTP
    status. Only envelopes (:func:`is_envelope`) are read; failures nested
    in operations are :func:`nested_failure`'s.
    """
    envelope = data if is_envelope(data) else {}
    if http_status == 404 or envelope.get("error_code") == 404:
        return Failure(404, True)
    if http_status >= 400 or envelope.get("type") == "error":
        code = status_code(envelope.get("error_code"))
        if code is None or code < FAILURE_FLOOR:
            code = http_status  # absent, odd (a string), or not an error code
        return Failure(code, False)
    return None


def nested_failure(data: Any) -> Optional[Dict[str, Any]]:
    """The first failed operation object inside ``data``, or None.

    Walks the chain of ``metadata`` an LXD answer nests (an envelope holds an
    operation, whose ``metadata`` may hold more), dicts and lists of operation
    objects alike, with a stack rather than recursion, so any depth is fine.
    It does not walk other keys: an instance's config or the ``failure`` list
    of ``GET /1.0/operations`` is data, not a verdict on this request.
    """
    todo: List[Any] = [data]
    while todo:
        node = todo.pop()
        if isinstance(node, list):
            todo.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        code = status_code(node.get("status_code"))
        if code is not None and code >= FAILURE_FLOOR:
            return node
        child = node.get("metadata")
        if isinstance(child, (dict, list)):
            todo.append(child)
    return None


_BODY_SNIPPET = 200
_SPACES = LazyPattern(r"\s+")


def server_message(data: Any, node: Any = None, text: str = "", status: int = 0,
                   reason: str = "") -> str:
    """The server's own words for an error, as one line, secrets redacted.

    LXD puts them in an operation's ``err`` (``node``, the failed operation,
    first; modern LXD also sends an empty top-level ``error`` on every answer,
    so ``err`` must win), else in the envelope's ``error``; a non-LXD server
    (a proxy's HTML page, another API's JSON) gets a snippet of its body
    ``text``; an empty body gets the HTTP ``status`` and ``reason``.

    >>> server_message({'type': 'error', 'error': 'Instance not found'})
    'Instance not found'
    """
    envelope = data if is_envelope(data) else {}
    metadata = envelope.get("metadata")
    for candidate in (node, metadata, envelope):
        if isinstance(candidate, dict) and candidate.get("err"):
            return one_line(str(candidate["err"]))
    if envelope.get("error"):
        return one_line(str(envelope["error"]))
    if text.strip():
        return one_line(text)
    return f"HTTP {status} {reason or ''}".rstrip()


def one_line(text: str) -> str:
    """Text folded onto one line, its secrets redacted, cut to a readable length.

    Redaction comes before the cut, so a secret is never half shown.
    """
    text = redact_free_text(_SPACES.sub(" ", text).strip())
    if len(text) > _BODY_SNIPPET:
        text = text[:_BODY_SNIPPET] + "…"
    return text


class Unreadable(NamedTuple):
    """Why a body declared as JSON could not be read (see :func:`parse_json`)."""

    reason: str


def parse_json(content: bytes, loads: Callable[[bytes], Any] = json.loads) -> Any:
    """The JSON of a body declared as JSON; None when it is empty; an
    :class:`Unreadable` when it is not JSON apitx can read (malformed, or
    nested deeper than :data:`MAX_JSON_DEPTH`). Never raises. ``loads``
    reads it: ``json.loads``, or ``apitx._json.loads`` (the async
    client's), which reads as json does.

    An unreadable answer must fail validation: whatever it says (a ``type:
    error`` deep inside, say) cannot be known, so it cannot pass as success.
    """
    if not content:
        return None
    try:
        return loads(content)
    except ValueError as exc:
        return Unreadable(f"it is not valid JSON ({exc})")
    except RecursionError:
        return _loads_deep(content)


#: The deepest JSON apitx parses. CPython's decoder recurses once per level,
#: against the interpreter's recursion limit (1000 by default, shared with
#: the caller's own frames): a 950-deep LXD answer failed to parse, and a
#: failure nested in it then passed validation in silence.
MAX_JSON_DEPTH = 20_000
_recursion_lock = threading.Lock()


def _loads_deep(content: bytes) -> Any:
    """Parse JSON too deep for the current recursion limit, with headroom."""
    # Every level opens a bracket, so their count bounds the depth (counted in C).
    depth = content.count(b"[") + content.count(b"{")
    too_deep = Unreadable(f"it is nested deeper than apitx reads ({MAX_JSON_DEPTH} levels)")
    if depth > MAX_JSON_DEPTH:
        return too_deep
    with _recursion_lock:
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(limit + depth)
        try:
            return json.loads(content)
        except ValueError as exc:
            return Unreadable(f"it is not valid JSON ({exc})")
        except RecursionError:
            return too_deep
        finally:
            sys.setrecursionlimit(limit)


_OPERATION_PATH = LazyPattern(r"^(?P<path>/[^/]+/operations/(?P<id>[^/?]+))(?:/wait)?$")


def operation_url(data: Any, request_path: str) -> Optional[str]:
    """The operation an answer is about, or None.

    The URL an async answer announced (``/1.0/operations/<uuid>``), or, for
    the answer to ``GET /1.0/operations/<uuid>`` (or its ``/wait``), that
    operation's own URL, so a caller who fetched an operation by URL can wait
    on it.

    >>> operation_url({'metadata': {'id': 'x'}}, '/1.0/operations/x/wait?timeout=1')
    '/1.0/operations/x'
    """
    envelope = data if isinstance(data, dict) else {}
    if envelope.get("operation"):
        return str(envelope["operation"])
    op = envelope.get("metadata")
    if not isinstance(op, dict) or "id" not in op:
        return None
    match = _OPERATION_PATH.match(request_path.split("?", 1)[0])
    return match.group("path") if match and match.group("id") == op["id"] else None


def operation_id(operation: str) -> str:
    """The id in an operation URL (``/1.0/operations/<id>[?query]``).

    >>> operation_id('/1.0/operations/4e17?project=default')
    '4e17'
    """
    return operation.partition("?")[0].rstrip("/").rsplit("/", 1)[-1] or "?"
