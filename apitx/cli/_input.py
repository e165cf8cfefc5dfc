"""What the command line gives a request, checked before anything is sent.

``-H 'Name: value'``, ``-p key=value``, ``-d`` JSON (text, ``@FILE`` or
``@-``) and ``--data-binary @FILE``; and any argument, refused when it holds
bytes that are not UTF-8 (a shell passes any bytes). Only what is the
command line's own is checked here: the library refuses a bad method or
header name itself, before sending (a RequestError: exit 2).

Example:

>>> parse_headers(['Accept: application/json'])
{'Accept': 'application/json'}
>>> parse_params(['recursion=1'])
[('recursion', '1')]
"""

from __future__ import annotations

import json
import re
import sys
from contextlib import ExitStack
from typing import IO, Any, Dict, List, NoReturn, Optional, Tuple

from ._exit import UsageError

#: What a header value may hold: printable ASCII, spaces and tabs. http.client
#: would send other characters as Latin-1, which is not what was typed (the
#: command line is UTF-8), or refuse them from deep inside.
_NOT_IN_VALUE = re.compile(r"[^\t\x20-\x7e]")


def utf8(option: str, text: str) -> str:
    """``text`` from the command line, refused if it holds bytes that are not UTF-8.

    Python keeps such bytes as lone surrogates (``\\udcff``), which cannot be
    encoded to be sent (and which a lenient encoder would send as U+FFFD,
    another text than the one typed).

    >>> utf8('-p', 'name=c1')
    'name=c1'
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise UsageError(f"{option}: not UTF-8 text (at character {exc.start + 1}); "
                         "nothing was sent") from None
    return text


def optional_utf8(option: str, text: Optional[str]) -> Optional[str]:
    """An option's value checked by :func:`utf8`, or None when it was not given.

    >>> optional_utf8('--target', None) is None
    True
    """
    return None if text is None else utf8(option, text)


def parse_headers(values: List[str]) -> Dict[str, str]:
    """``-H`` values as a dict; the name is the library's to check."""
    headers: Dict[str, str] = {}
    for value in values:
        name, sep, content = value.partition(":")
        name, content = name.strip(), content.strip()
        if not sep or not name:
            raise UsageError(f"-H {value!r} is not a header: write it as 'Name: value'")
        bad = _NOT_IN_VALUE.search(content)
        if bad:  # where, not what: a header value is often a secret
            raise UsageError(f"-H: header {utf8('-H', name)} cannot be sent: its value has a "
                             f"character that is not printable ASCII (at position "
                             f"{bad.start() + 1})")
        headers[utf8("-H", name)] = content
    return headers


def parse_params(values: List[str]) -> List[Tuple[str, str]]:
    """``-p`` values as (key, value) pairs, in order."""
    params = []
    for value in values:
        key, sep, content = value.partition("=")
        if not sep or not key:
            raise UsageError(f"-p {value!r} is not a parameter: write it as key=value")
        params.append((utf8("-p", key), utf8("-p", content)))
    return params


def request_body(data: Optional[str], data_binary: Optional[str],
                 stack: ExitStack) -> Tuple[Any, Optional[str]]:
    """The body to send (for ``-d`` or ``--data-binary``) and its default Content-Type."""
    if data is not None:
        text = utf8("-d " + data if data.startswith("@") else "-d", _read_data(data))
        _check_json(text)
        return text.encode("utf-8"), "application/json"
    if data_binary is not None:
        if not data_binary.startswith("@") or data_binary in ("@", "@-"):
            raise UsageError(f"--data-binary {data_binary!r}: give a file as @FILE "
                             "(its bytes are streamed; for JSON text use -d)")
        # requests streams an open file in blocks and takes its length from
        # fstat: the file is never loaded into memory.
        return stack.enter_context(_open(data_binary[1:], "rb", "--data-binary")), \
            "application/octet-stream"
    return None, None


def _check_json(text: str) -> None:
    """Refuse a -d body that is not JSON, before anything is sent.

    Python's parser takes more than JSON: ``NaN``, ``Infinity`` and
    ``-Infinity`` (which LXD's Go parser refuses) are refused here. So is a
    key given twice in one object: JSON leaves its meaning open, and LXD keeps
    only the last, so the first is silently lost (``{"config": {...},
    "config": {...}}`` is a mistake, never a request).

    >>> _check_json('{"a": NaN}')
    Traceback (most recent call last):
      ...
    apitx.cli._exit.UsageError: -d: invalid JSON: NaN is not JSON ...
    """
    try:
        json.loads(text, parse_constant=_no_constant, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        raise UsageError(f"-d: invalid JSON at line {exc.lineno}, column {exc.colno}: "
                         f"{exc.msg}; nothing was sent") from None
    except RecursionError:
        raise UsageError("-d: the JSON is nested too deeply to check; nothing was sent") from None


def _no_constant(name: str) -> NoReturn:
    raise UsageError(f"-d: invalid JSON: {name} is not JSON (JSON has no NaN or Infinity); "
                     "nothing was sent")


def _unique_keys(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    keys = set()
    for key, _ in pairs:
        if key in keys:
            raise UsageError(f"-d: key {key!r} appears twice in one object (LXD would keep only "
                             "the last); nothing was sent")
        keys.add(key)
    return dict(pairs)


def _read_data(value: str) -> str:
    if value == "@-":
        if sys.stdin is None:
            raise UsageError("-d @-: stdin is closed: pipe the JSON in, or give it as -d TEXT "
                             "or -d @FILE; nothing was sent")
        return _read_text(sys.stdin, value)
    if value.startswith("@"):
        with _open(value[1:], "r", "-d") as handle:
            return _read_text(handle, value)
    return value


def _read_text(stream: IO[str], value: str) -> str:
    try:
        return stream.read()
    except UnicodeDecodeError as exc:
        raise UsageError(f"-d {value}: not UTF-8 text ({exc.reason}); for raw "
                         "bytes use --data-binary") from None


def _open(path: str, mode: str, option: str) -> IO[Any]:
    try:
        return open(path, mode, encoding="utf-8" if "b" not in mode else None)
    except OSError as exc:
        raise UsageError(f"{option} {path}: {exc.strerror}") from None
