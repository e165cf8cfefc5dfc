"""Reading JSON: orjson when it is installed, json's meaning kept.

Reading an answer's JSON is the largest piece of a request's cost inside
the client: of ``GET /1.0`` (9.6 kB from LXD 5.0.2) on this project's test
machine, ``json.loads`` takes about 37 µs, more than apitx's own work and
aiohttp's together, against about 12 µs for orjson. orjson is a well-kept
parser (C and Rust, wheels for every common platform) that comes with the
``async`` extra (``pip install 'apitx[async]'``).

The async client reads its answers with it (:class:`~apitx.AsyncAPIResult`):
it serves programs that make many requests in one process, the services
that count a request's CPU. The sync client and the command keep json
(``apitx.API`` never imports this module): importing orjson takes about
12 ms (it imports ``dataclasses``, ``inspect`` and ``uuid``), more than it
would save a command that makes a few requests and exits (``bench/cli_start.py``).

The two read the same text the same way with one exception, below; where
orjson *refuses* a text json reads (``NaN`` and ``Infinity``, a lone
surrogate escape such as ``"\\ud800"``, nesting deeper than 1,024 levels,
bytes in UTF-16 or UTF-32), :func:`loads` hands the text to json, which
reads it as it always did, or raises its own error with its own words: a
caller never sees an orjson message, and nothing json reads is refused.

The exception: orjson reads an integer beyond 64 bits (above
18446744073709551615 or below -9223372036854775808) as the nearest float.
LXD and Incus are Go programs whose integers are 64-bit and never send one;
a program that must read such integers exactly from another server reads
them exactly with the sync client, or with the async one once orjson is
uninstalled (``pip uninstall orjson``): it then reads with json.

>>> loads(b'{"type": "sync", "status_code": 200, "metadata": [1, 2.5, "x"]}')
{'type': 'sync', 'status_code': 200, 'metadata': [1, 2.5, 'x']}
>>> loads(b'[NaN]')  # refused by orjson: json reads it, as before
[nan]
"""

from __future__ import annotations

import json
from typing import Any, Callable, Optional, Union

#: orjson's reader when orjson is installed, else None.
fast_loads: Optional[Callable[[Union[bytes, bytearray, memoryview, str]], Any]]
try:
    from orjson import loads as fast_loads
except ImportError:  # the sync-only install: json alone
    fast_loads = None


def loads(text: Union[bytes, bytearray, str]) -> Any:
    """The value of a JSON text, as ``json.loads`` reads it (see the module).

    Raises what ``json.loads`` raises (a ``ValueError`` for text that is not
    JSON, a ``RecursionError`` for nesting deeper than the interpreter's
    recursion limit allows it).
    """
    if fast_loads is not None:
        try:
            return fast_loads(text)
        except ValueError:  # orjson.JSONDecodeError: json reads it, or says why not
            pass
    return json.loads(text)
