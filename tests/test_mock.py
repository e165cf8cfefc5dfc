"""apitx.testing.MockTransport: a handler answers, the real sender, validation,
waiting and tracing do the rest, with no server and no socket.

Each test proves one promise of the module docstring of
apitx/_transports/_mock.py, through the public API only.
"""

from __future__ import annotations

import io
import logging
from typing import Callable, Dict, List

import pytest

import apitx
from apitx import (APIConnectionError, APIException, APINotFoundException, OperationTimeout,
                   RequestTypeError, SettingsTypeError)
from apitx.testing import Answer, MockRequest, MockTransport, operation


def api_on(handler: Callable[[MockRequest], Answer], **kwargs) -> apitx.API:
    return apitx.API.factory(transport=MockTransport(handler), **kwargs)


def by_path(answers: Dict[str, Answer]) -> Callable[[MockRequest], Answer]:
    """A handler answering by path, and LXD's 404 otherwise."""
    return lambda request: answers.get(request.path, Answer.error(404, "not found"))


def polled(op_id: str, states: List[Answer]) -> Callable[[MockRequest], Answer]:
    """An operation started by ``POST /1.0/instances`` whose ``/wait`` answers
    ``states`` in turn (the last one for ever)."""
    left = list(states)

    def handler(request: MockRequest) -> Answer:
        if request.method == "POST":
            return Answer.operation(operation(op_id, 103))
        if request.path == f"/1.0/operations/{op_id}/wait":
            return left.pop(0) if len(left) > 1 else left[0]
        return Answer.error(404, "Operation not found")
    return handler


# -- answers -----------------------------------------------------------------------

def test_a_sync_answer_and_the_request_the_handler_saw():
    transport = MockTransport(by_path({"/1.0/instances": Answer.sync(["/1.0/instances/c1"])}))
    with apitx.API.factory(transport=transport, project="p") as api:
        result = api.post("instances", params={"recursion": 1}, json={"name": "c1"})
    assert (result.status_code, result.metadata) == (200, ["/1.0/instances/c1"])
    assert result.response.headers["Content-Type"] == "application/json"
    [seen] = transport.requests
    assert (seen.method, seen.path, dict(seen.params)) == (
        "POST", "/1.0/instances", {"recursion": "1", "project": "p"})
    assert seen.json() == {"name": "c1"}
    assert seen.headers["Content-Type"] == "application/json"
    assert api.endpoint.base_url == "https://lxd.test:8443"  # MOCK_ENDPOINT: no server behind it


def test_an_error_answer_raises_with_the_handlers_words():
    api = api_on(by_path({}))
    with pytest.raises(APINotFoundException) as info:
        api.get("instances/c1")
    assert (info.value.status_code, info.value.error) == (404, "not found")
    assert str(info.value) == "GET https://lxd.test:8443/1.0/instances/c1: not found"


def test_validate_false_returns_the_error_and_validate_raises_it_later():
    api = api_on(lambda request: Answer.error(409, "Instance is running"))
    result = api.delete("instances/c1", validate=False)
    assert (result.ok, result.status_code, result.data["error"]) == (
        False, 409, "Instance is running")
    with pytest.raises(APIException, match=r"^DELETE https://lxd.test:8443/1.0/instances/c1: "
                                           r"Instance is running$") as info:
        result.validate()
    assert info.value.status_code == 409


def test_a_raw_answer_with_bytes_and_headers():
    api = api_on(lambda request: Answer(200, b"log line\n",
                                        {"Content-Type": "application/octet-stream"}))
    result = api.get("instances/c1/logs/lxc.log")
    assert (result.data, result.response.content) == (None, b"log line\n")


def test_an_operation_answer_announces_its_operation():
    api = api_on(polled("op1", [Answer.sync(operation("op1", 200))]))
    started = api.post("instances", json={"name": "c1"})
    assert (started.status_code, started.data["type"], started.operation) == (
        202, "async", "/1.0/operations/op1")
    assert started.metadata["status"] == "Running"


# -- waiting -----------------------------------------------------------------------

def test_wait_polls_a_mocked_operation_to_success():
    transport = MockTransport(polled("op1", [Answer.sync(operation("op1", 103))] * 2
                                     + [Answer.sync(operation("op1", 200, metadata={"x": 1}))]))
    api = apitx.API.factory(transport=transport)
    done = api.post("instances", json={"name": "c1"}).wait(timeout=30)
    assert (done.metadata["status"], done.metadata["metadata"]) == ("Success", {"x": 1})
    polls = [request for request in transport.requests if request.path.endswith("/wait")]
    assert len(polls) == 3
    assert all(request.params["timeout"] == "30" for request in polls)


def test_wait_polls_a_mocked_operation_to_failure():
    api = api_on(polled("op1", [Answer.sync(operation("op1", 103)),
                                Answer.sync(operation("op1", 400, err="Failed to start"))]))
    started = api.post("instances", json={"name": "c1"})
    with pytest.raises(APIException) as info:
        started.wait(timeout=30)
    assert (info.value.status_code, info.value.error) == (400, "Failed to start")
    assert info.value.started is started
    assert str(info.value).startswith("POST https://lxd.test:8443/1.0/instances: operation op1 ")


def test_wait_timeout_zero_asks_once():
    transport = MockTransport(polled("op1", [Answer.sync(operation("op1", 103))]))
    api = apitx.API.factory(transport=transport)
    started = api.post("instances", json={"name": "c1"})
    with pytest.raises(OperationTimeout) as info:
        started.wait(timeout=0)
    assert info.value.result.metadata["status"] == "Running"
    assert [(request.path, dict(request.params)) for request in transport.requests[1:]] == [
        ("/1.0/operations/op1/wait", {"timeout": "0"})]


def test_wait_with_progress_polls_without_websockets():
    api = api_on(polled("op1", [Answer.sync(operation("op1", 103)),
                                Answer.sync(operation("op1", 200))]))
    seen: list = []
    done = api.post("instances", json={"name": "c1"}).wait(timeout=30, progress=seen.append)
    assert done.metadata["status"] == "Success"
    assert [answer.metadata["status"] for answer in seen] == ["Running"]


def test_wait_all_polls_each_operation():
    def handler(request: MockRequest) -> Answer:
        op_id = request.json()["name"] if request.method == "POST" else request.path.split("/")[3]
        if request.method == "POST":
            return Answer.operation(operation(op_id, 103))
        return Answer.sync(operation(op_id, 400 if op_id == "bad" else 200, err="no"))
    api = api_on(handler)
    started = [api.post("instances", json={"name": name}) for name in ("good", "bad")]
    good, bad = api.wait_all(started, timeout=30, return_exceptions=True)
    assert good.metadata["status"] == "Success"
    assert isinstance(bad, APIException) and bad.error == "no"


# -- tracing, the request list, bodies ---------------------------------------------

def test_debug_traces_every_transaction(monkeypatch, caplog):
    monkeypatch.setenv("DEBUG", "1")
    api = api_on(by_path({"/1.0": Answer.sync({"api_version": "1.0"})}))
    with caplog.at_level(logging.DEBUG, logger="apitx"):
        api.get("")
        api.get("instances/c1", validate=False)
    first_lines = [record.getMessage().splitlines()[0] for record in caplog.records]
    assert len(first_lines) == 2
    assert " https://lxd.test:8443 GET /1.0 " in first_lines[0]
    assert " GET /1.0/instances/c1 " in first_lines[1]
    assert "HTTP/404 Not Found" in caplog.records[1].getMessage()


def test_requests_lists_what_the_handler_saw_in_order():
    transport = MockTransport(lambda request: Answer.sync())
    api = apitx.API.factory(transport=transport, default_version=None)
    api.get("/1.0")
    api.put("/1.0/profiles/p", json={"config": {}}, headers={"If-Match": '"e1"'})
    api.delete("/1.0/profiles/p")
    assert [(r.method, r.path) for r in transport.requests] == [
        ("GET", "/1.0"), ("PUT", "/1.0/profiles/p"), ("DELETE", "/1.0/profiles/p")]
    assert transport.requests[1].headers["If-Match"] == '"e1"'
    assert all(isinstance(r, MockRequest) for r in transport.requests)


@pytest.mark.parametrize("body", [iter([b"ab", "cd", b"ef"]), io.BytesIO(b"abcdef"),
                                  io.StringIO("abcdef"), "abcdef", b"abcdef"],
                         ids=["iterator", "binary-file", "text-file", "str", "bytes"])
def test_a_request_body_reaches_the_handler_whole(body):
    transport = MockTransport(lambda request: Answer.sync())
    apitx.API.factory(transport=transport).post("instances/c1/files", data=body)
    assert transport.requests[0].body == b"abcdef"


def test_a_streamed_answer_is_left_to_the_caller_and_arrives_whole():
    payload = bytes(range(256)) * 1000
    api = api_on(lambda request: Answer(200, payload,
                                        {"Content-Type": "application/octet-stream"}))
    result = api.get("instances/c1/files", params={"path": "/bin/x"}, stream=True)
    assert result.data is None and not result.body_read
    chunks = list(result.iter_content(4096))
    assert len(chunks) > 1 and b"".join(chunks) == payload


# -- faults, and mistakes in the test itself ----------------------------------------

def test_a_handler_raising_apiconnectionerror_plays_a_transport_fault():
    def refused(request: MockRequest) -> Answer:
        raise APIConnectionError("unix:/x: connection refused: is the daemon running?",
                                 endpoint="unix:/x")
    with pytest.raises(APIConnectionError, match="is the daemon running") as info:
        api_on(refused).get("")
    assert info.value.endpoint == "unix:/x"


def test_websockets_are_not_mocked():
    api = api_on(lambda request: Answer.sync())
    with pytest.raises(APIConnectionError, match="MockTransport opens no websockets"):
        api.events()


def test_a_handler_that_returns_no_answer_is_named():
    api = api_on(lambda request: {"type": "sync"})  # type: ignore[arg-type, return-value]
    with pytest.raises(RequestTypeError, match=r"the MockTransport handler answered "
                                               r"\{'type': 'sync'\} to GET \S+/1.0: return"):
        api.get("")


def test_a_bug_in_the_handler_propagates_as_it_is():
    def broken(request: MockRequest) -> Answer:
        raise KeyError("typo")
    with pytest.raises(KeyError, match="typo"):
        api_on(broken).get("")


def test_a_handler_must_be_callable():
    with pytest.raises(SettingsTypeError, match="give a function taking a MockRequest"):
        MockTransport("not a function")  # type: ignore[arg-type]
