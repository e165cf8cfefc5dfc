"""A caller's arguments, checked where apitx first takes them.

A value of the wrong type must not travel into requests, urllib3, ``open()``
or ``json`` and come back as their ``AttributeError``, ``TypeError`` or
``OSError``, naming none of what the caller wrote: the promise of
:mod:`apitx._exceptions` is that every error apitx raises is in its tree.
These checks raise :class:`~apitx.RequestTypeError` (a wrong type) and
:class:`~apitx.RequestError` (a wrong value), each naming the argument as
the caller wrote it (``what``), the value, and what to give instead. They
run before anything is sent, so each message says so.

One rule needs saying: a local path is a ``str`` or an ``os.PathLike``,
never an int. ``open(7)`` opens file descriptor 7 and closes it when done,
so ``file_fingerprint(True)`` would have read and closed the caller's
stdout.

>>> from pathlib import Path
>>> from apitx._checks import local_path, text
>>> text('c1', 'files(instance)')
'c1'
>>> local_path(Path('out.bin'), 'pull(target)')
'out.bin'
>>> local_path(3, 'pull(target)')                # never taken for a descriptor
Traceback (most recent call last):
  ...
apitx.RequestTypeError: pull(target): 3 is not a local path; give a str or a pathlib.Path; nothing was sent
"""

from __future__ import annotations

import math
import os
from typing import Any, Mapping, Optional

from ._exceptions import RequestError, RequestTypeError

NOTHING_SENT = "nothing was sent"


def text(value: Any, what: str) -> str:
    """``value`` if it is a str."""
    if not isinstance(value, str):
        raise RequestTypeError(f"{what}: {value!r} is not a str; {NOTHING_SENT}")
    return value


def optional_text(value: Any, what: str) -> Optional[str]:
    """``value`` if it is a str or None."""
    return None if value is None else text(value, what)


def mapping(value: Any, what: str) -> Mapping[Any, Any]:
    """``value`` if it is a mapping (a dict)."""
    if not isinstance(value, Mapping):
        raise RequestTypeError(f"{what}: {value!r} is not a mapping; give a dict; "
                               f"{NOTHING_SENT}")
    return value


def optional_mapping(value: Any, what: str) -> Optional[Mapping[Any, Any]]:
    """``value`` if it is a mapping or None."""
    return None if value is None else mapping(value, what)


def whole_number(value: Any, what: str, *, minimum: int = 0) -> int:
    """``value`` if it is an int (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestTypeError(f"{what}: {value!r} is not a whole number; {NOTHING_SENT}")
    if value < minimum:
        raise RequestError(f"{what}: {value!r} is below {minimum}; {NOTHING_SENT}")
    return value


def optional_whole_number(value: Any, what: str, *, minimum: int = 0) -> Optional[int]:
    """``value`` if it is None or an int (not a bool) of at least ``minimum``."""
    return None if value is None else whole_number(value, what, minimum=minimum)


def seconds(value: Any, what: str, *, optional: bool = True) -> Optional[float]:
    """``value`` as seconds >= 0; None (when ``optional``) or ``math.inf`` is
    no limit, returned as None.

    >>> seconds(0.5, 'confirm(timeout)'), seconds(None, 'next_event(timeout)')
    (0.5, None)
    """
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RequestTypeError(f"{what}: {value!r} is not a number of seconds; give one >= 0"
                               + (", or None for no limit" if optional else ""))
    if math.isnan(value) or value < 0:
        raise RequestError(f"{what}: {value!r} is not a number of seconds >= 0")
    return None if math.isinf(value) else float(value)


def local_path(value: Any, what: str, *, outcome: str = NOTHING_SENT) -> str:
    """``value`` as a path string, if it is a str or an ``os.PathLike`` naming
    a path (not empty, no NUL): never an int, which ``open()`` would take
    for a file descriptor of the caller's. ``outcome`` ends the message."""
    if isinstance(value, (bool, int)) or not isinstance(value, (str, os.PathLike)):
        raise RequestTypeError(f"{what}: {value!r} is not a local path; give a str or a "
                               f"pathlib.Path; {outcome}")
    path = os.fspath(value)
    if not isinstance(path, str) or not path or "\0" in path:
        raise RequestError(f"{what}: {value!r} is not a usable local path (empty, bytes, or "
                           f"with a NUL); {outcome}")
    return path


def unreadable(path: str, what: str, error: OSError) -> RequestError:
    """The :class:`RequestError` for a local file the caller named that
    cannot be read (or written): raise it ``from`` the OSError."""
    return RequestError(f"{what}: cannot use {path}: {error.strerror or error}")
