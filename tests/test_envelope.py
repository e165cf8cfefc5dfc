"""apitx._envelope: LXD's rules as pure functions, by table and by fuzzing.

The fuzzing (hypothesis) feeds arbitrary bytes and JSON trees: no function
raises, an unreadable body is never taken for an answer, a failure nested
anywhere in the chain of metadata is found, and planted secrets never come
out of the one-line messages.
"""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apitx import _envelope
from apitx._envelope import (MAX_JSON_DEPTH, Failure, Unreadable, is_envelope, nested_failure,
                             parse_json, server_message, top_failure)


@pytest.mark.parametrize("data, status, failure", [
    ({"type": "sync", "metadata": {}}, 200, None),
    ({"type": "error", "error_code": 404}, 200, Failure(404, True)),
    ({"type": "error", "error_code": 403}, 200, Failure(403, False)),
    ({"type": "error", "error_code": "500"}, 500, Failure(500, False)),
    ({"type": "error"}, 200, Failure(200, False)),
    ({"error_code": 404}, 200, None),           # not an envelope: a field, not a verdict
    (None, 404, Failure(404, True)),
    (None, 502, Failure(502, False)),
    ([1, 2], 200, None),
])
def test_top_failure(data, status, failure):
    assert top_failure(data, status) == failure


def test_parse_json_tells_unreadable_from_empty():
    assert parse_json(b"") is None
    assert parse_json(b'{"a": 1}') == {"a": 1}
    assert isinstance(parse_json(b"{nope"), Unreadable)
    deep = b"[" * (MAX_JSON_DEPTH + 5) + b"]" * (MAX_JSON_DEPTH + 5)
    assert "deeper" in parse_json(deep).reason
    assert parse_json(b"[" * 3000 + b"]" * 3000) is not None  # deeper than recursion, still read


@pytest.mark.parametrize("url, path, expected", [
    ("/1.0/operations/x?project=default", "/1.0/instances", "/1.0/operations/x?project=default"),
])
def test_operation_url_keeps_what_the_server_announced(url, path, expected):
    assert _envelope.operation_url({"operation": url}, path) == expected


# -- fuzzing ---------------------------------------------------------------------------

json_leaves = st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=20)
json_trees = st.recursive(
    json_leaves,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["type", "status_code", "error_code", "err", "error", "metadata",
                         "operation", "id", "x"]) | st.text(max_size=8), children, max_size=5),
    max_leaves=30)


@settings(max_examples=400, deadline=None)
@given(body=st.binary(max_size=200))
def test_parse_json_never_raises(body):
    parse_json(body)


@settings(max_examples=400, deadline=None)
@given(data=json_trees, status=st.integers(100, 599), text=st.text(max_size=50))
def test_the_rules_never_raise_and_agree(data, status, text):
    failure = top_failure(data, status)
    node = nested_failure(data)
    message = server_message(data, node, text=text, status=status, reason="R")
    assert "\n" not in message and len(message) <= 201
    if status >= 400:
        assert failure is not None  # an HTTP error is never a success, whatever the body
    if node is not None:
        assert node["status_code"] >= 400 and not isinstance(node["status_code"], bool)
    assert is_envelope(data) == (isinstance(data, dict) and data.get("type") in
                                 ("sync", "async", "error"))


def _chain(levels: int, code: int, err: str) -> dict:
    node: dict = {"status_code": code, "err": err}
    for _ in range(levels):
        node = {"status_code": 200, "metadata": node}
    return {"type": "sync", "status_code": 200, "metadata": node}


@settings(max_examples=100, deadline=None)
@given(levels=st.integers(0, 200), code=st.integers(400, 599), as_list=st.booleans())
def test_a_failure_anywhere_in_the_chain_is_found(levels, code, as_list):
    data = _chain(levels, code, "deep")
    if as_list:
        data["metadata"] = [{"status_code": 200}, data["metadata"]]
    assert nested_failure(json.loads(json.dumps(data)))["status_code"] == code


secrets = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ23456789", min_size=6, max_size=16).map(
    lambda s: "S3CR3T" + s)


@settings(max_examples=200, deadline=None)
@given(secret=secrets, where=st.sampled_from(["err", "error", "text"]),
       form=st.sampled_from(["password={}", "token: {}", "https://u:{}@h/x",
                             "https://h/x?secret={}"]))
def test_planted_secrets_never_reach_a_message(secret, where, form):
    said = f"refused: {form.format(secret)} (check it)"
    data = {"type": "error", "error_code": 400, "metadata": None}
    if where == "err":
        data["metadata"] = {"status_code": 400, "err": said}
    elif where == "error":
        data["error"] = said
    message = server_message(data, nested_failure(data),
                             text=said if where == "text" else "", status=400)
    assert secret not in message and "<redacted>" in message
