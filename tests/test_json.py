"""apitx._json: orjson's speed with json's meaning, for the async client.

What a caller reads must not depend on the client or on whether orjson is
installed: every text both read is compared value for value and type for
type (a float is not an int, ``-0.0`` is not ``0.0``), and every text orjson
refuses must come back as json reads it, or fail with json's own words.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apitx import API, AsyncAPI, _json
from apitx._envelope import Unreadable, parse_json


def same(a: Any, b: Any) -> bool:
    """Equal in value and in type, all the way down (float bits included)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return math.copysign(1.0, a) == math.copysign(1.0, b) and (
            a == b or (math.isnan(a) and math.isnan(b)))
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


# What a 64-bit server (LXD, Incus) can send: integers within 64 bits,
# finite floats, any text (hypothesis leaves lone surrogates out: their
# escapes are below), nested.
SCALARS = (st.none() | st.booleans()
           | st.integers(min_value=-(2 ** 63), max_value=2 ** 64 - 1)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text())
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=5)
                      | st.dictionaries(st.text(), inner, max_size=5), max_leaves=40)


@settings(max_examples=500, deadline=None)
@given(VALUES, st.booleans(), st.sampled_from([None, 0, 2]))
def test_every_text_reads_as_json_reads_it(value: Any, ascii_only: bool, indent: Any) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only, indent=indent)
    for given_as in (text, text.encode("utf-8")):
        assert same(_json.loads(given_as), json.loads(given_as))


@pytest.mark.parametrize("text", [
    b"[NaN, Infinity, -Infinity]",              # not JSON, but json reads them
    b'"\\ud800"', b'{"a": "\\udfff x"}',         # lone surrogate escapes
    '{"a": [1, "\u00e9"]}'.encode("utf-16"),     # json detects UTF-16 and -32
    '{"a": 1}'.encode("utf-32-le"),
    b'\xef\xbb\xbf{"a": 1}',                   # a UTF-8 byte order mark
    b'{"a": 1, "a": 2}',                        # the last of duplicate keys wins
])
def test_what_orjson_refuses_json_reads_as_before(text: bytes) -> None:
    assert same(_json.loads(text), json.loads(text))


def test_deeper_than_orjson_reads_is_read_by_json() -> None:
    # orjson stops at 1,024 levels, json at the recursion limit (about 1,000
    # in a test); parse_json reads far deeper (_envelope.MAX_JSON_DEPTH).
    data = parse_json(b"[" * 3000 + b"1" + b"]" * 3000, _json.loads)
    for _ in range(3000):
        assert type(data) is list and len(data) == 1
        data = data[0]
    assert data == 1


@pytest.mark.parametrize("text", [b"", b"{", b"[1,]", b"\xff", b"{'a': 1}", b"[1] x"])
def test_what_is_not_json_fails_with_json_s_own_words(text: bytes) -> None:
    with pytest.raises(ValueError) as expected:
        json.loads(text)
    with pytest.raises(ValueError) as raised:
        _json.loads(text)
    assert type(raised.value) is type(expected.value)
    assert str(raised.value) == str(expected.value)


def test_an_unreadable_answer_says_json_s_words() -> None:
    assert parse_json(b'{"type": "sync",', _json.loads) == Unreadable(
        "it is not valid JSON (Expecting property name enclosed in double quotes: "
        "line 1 column 17 (char 16))")


BIG = b'{"type": "sync", "status_code": 200, "metadata": {"size": 18446744073709551616}}'


def answer(api: object) -> object:
    """A result of ``api``'s own kind for the answer BIG (as an operation
    event's or a refused upgrade's answer is made: no server sends it)."""
    return api._sender.made_result(  # type: ignore[attr-defined]
        api, "http+unix://lxd/1.0", 200, BIG, headers={"Content-Type": "application/json"})


def test_the_async_client_reads_with_orjson() -> None:
    # The one difference the module documents is also the proof that orjson
    # did the reading: an integer beyond 64 bits comes back as a float.
    assert _json.fast_loads is orjson.loads
    assert same(_json.loads(b"[18446744073709551616]"), [1.8446744073709552e19])
    assert same(answer(AsyncAPI.factory()).metadata, {"size": 1.8446744073709552e19})


def test_the_sync_client_reads_with_json() -> None:
    with API.factory() as api:
        assert same(answer(api).metadata, {"size": 18446744073709551616})


def test_without_orjson_json_reads_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_json, "fast_loads", None)
    assert same(_json.loads(b"[18446744073709551616]"), [18446744073709551616])
    assert same(answer(AsyncAPI.factory()).metadata, {"size": 18446744073709551616})
