"""wait(progress=) from events, and wait_all(): live on LXD and Incus, and without events."""

from __future__ import annotations

import json
import uuid

import pytest

import apitx
from apitx._events import events
from apitx.testing import operation

from canned import FAILED_WAITS, NOT_AN_OPERATION, running, succeeded
from hostile import envelope
from hostile_ws import running_ws_server
from sandbox import SERVERS, instance_config, remove_instance

DAEMONS = [server.name for server in SERVERS]


def start(api: apitx.API, instance: str, *command: str) -> apitx.APIResult:
    """Start a command in a running instance; return the exec's async result."""
    return api.post(f"instances/{instance}/exec", json={
        "command": list(command), "record-output": True, "wait-for-websocket": False,
        "interactive": False})


def instant(stamp: str) -> tuple:
    """An LXD time (``2026-11-21T16:13:01.1667025Z``) as a comparable value:
    the nanoseconds come without trailing zeros, so the strings do not sort."""
    whole, _, fraction = stamp.rstrip("Z").partition(".")
    return whole, fraction.ljust(9, "0")


def unwrapped(answer: apitx.APIResult) -> str:
    return json.dumps(answer.metadata, sort_keys=True)


# -- wait(progress=) ---------------------------------------------------------------

@pytest.mark.live
@pytest.mark.parametrize("daemon", DAEMONS)
def test_progress_sees_every_update_of_an_instance_creation(live, daemon):
    api = live.api(daemon)
    name = f"apitx-{uuid.uuid4().hex[:10]}"
    seen: list = []
    # An independent stream, open before the operation starts, sees every update.
    with events(api, types=["operation"], timeout=60) as stream:
        try:
            started = api.post("instances", json=instance_config(name))
            done = started.wait(timeout=120, progress=seen.append)
            again = started.wait(timeout=30)  # plain long-polling, the old way
            updates = []
            for event in stream:
                if event.metadata.get("id") == started.metadata["id"]:
                    updates.append(event.metadata)
                    if event.metadata["status_code"] >= 200:
                        break
        finally:
            remove_instance(api, name)
    assert done.data == again.data and done.metadata["status"] == "Success"
    assert seen and all(answer.metadata["status"] == "Running" for answer in seen)
    waited = [answer.waited for answer in seen]
    assert waited == sorted(waited)
    # The unpacking's progress, as LXD reports it (many updates a second).
    assert any(key.endswith("_progress") for answer in seen
               for key in (answer.metadata.get("metadata") or {}))
    # seen[0] is the check made once the stream was open: every later update
    # reached the callback, the same operation as the independent stream saw it.
    checked = instant(seen[0].metadata["updated_at"])
    later = {json.dumps(update, sort_keys=True) for update in updates
             if update["status"] == "Running" and instant(update["updated_at"]) > checked}
    assert later, updates
    assert later <= {unwrapped(answer) for answer in seen}


@pytest.mark.live
@pytest.mark.parametrize("daemon", DAEMONS)
def test_progress_of_a_running_exec_and_its_result_equal_the_polled_ones(live, daemon):
    api, instance = live.api(daemon), live.instance(daemon)
    started = start(api, instance, "sleep", "2")
    seen: list = []
    done = started.wait(timeout=30, progress=seen.append)
    assert done.data == started.wait(timeout=30).data  # the old long-poll, once more
    assert done.metadata["metadata"]["return"] == 0
    assert len(seen) >= 2 and {answer.metadata["status"] for answer in seen} == {"Running"}
    assert {answer.metadata["id"] for answer in seen} == {started.metadata["id"]}
    assert all(answer.operation == started.operation for answer in seen)


@pytest.mark.live
def test_progress_still_times_out_as_asked(live):
    api, instance = live.api("lxd"), live.instance("lxd")
    started = start(api, instance, "sleep", "4")
    with pytest.raises(apitx.OperationTimeout) as info:
        started.wait(timeout=1, progress=lambda answer: None)
    assert info.value.result.operation == started.operation
    assert info.value.result.running
    started.wait(timeout=30)


def test_without_events_progress_comes_from_polls(canned, canned_api):
    # A MockTransport opens no websocket: the operation is polled.
    seen: list = []
    slowly = canned.operation("op-slowly", running("op-slowly"), running("op-slowly"),
                              succeeded("op-slowly"))
    done = canned_api.get(slowly).wait(timeout=10, progress=seen.append)
    assert done.metadata["status"] == "Success"
    assert [answer.metadata["status"] for answer in seen] == ["Running", "Running"]
    assert canned.targets()[1:] == ["/1.0/operations/op-slowly/wait?timeout=1"] * 3


# -- wait_all() ---------------------------------------------------------------------

@pytest.mark.live
@pytest.mark.parametrize("daemon", DAEMONS)
def test_wait_all_returns_twenty_execs_in_order_over_one_connection(live, daemon,
                                                                     socket_connects):
    api, instance = live.api(daemon), live.instance(daemon)
    started = [start(api, instance, "sleep", str(1 + n % 3)) for n in range(20)]
    socket_connects.clear()
    done = api.wait_all(started, timeout=60)
    assert [answer.metadata["id"] for answer in done] == \
        [result.metadata["id"] for result in started]
    assert all(answer.metadata["status"] == "Success" and
               answer.metadata["metadata"]["return"] == 0 for answer in done)
    # The event stream, and at most a reconnect of the pooled connection:
    # not one socket per operation.
    assert 1 <= len(socket_connects) <= 2, socket_connects


@pytest.mark.live
@pytest.mark.parametrize("daemon", DAEMONS)
def test_wait_all_raises_the_first_failure_as_wait_does(live, daemon):
    api, instance = live.api(daemon), live.instance(daemon)
    started = [start(api, instance, "sleep", "1"), start(api, instance, "/nonexistent"),
               start(api, instance, "/nonexistent-too")]
    with pytest.raises(apitx.APIException) as info:
        api.wait_all(started, timeout=60)
    with pytest.raises(apitx.APIException) as alone:
        started[1].wait(timeout=30)
    # The same failure, the same words; the polls differ only in their timeout=.
    assert (info.value.status_code, info.value.error, info.value.result.operation) == \
        (alone.value.status_code, alone.value.error, alone.value.result.operation)
    assert info.value.error == "Command not found"


@pytest.mark.live
@pytest.mark.parametrize("daemon", DAEMONS)
def test_wait_all_returns_failures_in_place(live, daemon):
    api, instance = live.api(daemon), live.instance(daemon)
    started = [start(api, instance, "sleep", "1"), start(api, instance, "/nonexistent"),
               api.get(""), start(api, instance, "true")]
    done = api.wait_all(started, timeout=60, return_exceptions=True)
    assert done[0].metadata["status"] == "Success"
    assert isinstance(done[1], apitx.APIException) and done[1].status_code == 400
    assert done[2] is started[2]  # not an operation: passed through, as wait() does
    assert done[3].metadata["metadata"]["return"] == 0


@pytest.mark.live
@pytest.mark.parametrize("daemon", DAEMONS)
def test_wait_all_returns_an_operation_that_ended_before_it_was_called(live, daemon):
    api, instance = live.api(daemon), live.instance(daemon)
    ended = start(api, instance, "true")
    ended.wait(timeout=30)  # LXD forgets it about 5 s after it ends: go on at once
    running = start(api, instance, "sleep", "1")
    done = api.wait_all([ended, running], timeout=30)
    assert [answer.metadata["id"] for answer in done] == [ended.metadata["id"],
                                                          running.metadata["id"]]
    assert {answer.metadata["status"] for answer in done} == {"Success"}


@pytest.mark.live
def test_wait_all_times_out_naming_the_first_still_running(live):
    api, instance = live.api("lxd"), live.instance("lxd")
    ended = start(api, instance, "true")
    ended.wait(timeout=30)  # ended for sure (a busy daemon may take a second to run it)
    started = [ended, start(api, instance, "sleep", "4"), start(api, instance, "sleep", "5")]
    with pytest.raises(apitx.OperationTimeout) as info:
        api.wait_all(started, timeout=1)
    assert info.value.result.operation == started[1].operation
    api.wait_all(started[1:], timeout=30)


def test_wait_all_without_events_polls_every_failure_encoding(canned, canned_api):
    waits = {"op-ok": [succeeded("op-ok")],
             "op-slowly": [running("op-slowly"), running("op-slowly"), succeeded("op-slowly")],
             **{op_id: [answer] for op_id, answer in FAILED_WAITS.items()},
             "not-op": [NOT_AN_OPERATION]}
    started = [canned_api.get(canned.operation(op_id, *answers))
               for op_id, answers in waits.items()]
    done = canned_api.wait_all(started, timeout=10, return_exceptions=True)
    assert [answer.metadata["status"] for answer in done[:2]] == ["Success", "Success"]
    assert [each.error for each in done[2:]] == [
        "failed inside", "failed by status", "failed by type",
        "the answer to a wait is not an operation: cannot tell whether it ended"]
    with pytest.raises(apitx.APIException, match="failed inside"):
        canned_api.wait_all(started, timeout=10)


def test_a_stream_that_drops_midway_falls_back_to_polling():
    # The stream pings (registered), then drops; the operation is polled to its end.
    polls: list = []

    def http(target: str):
        if target.startswith("/async/"):
            return 202, envelope(operation("op-x", 103), type_="async", status_code=100,
                                 operation="/1.0/operations/op-x")
        polls.append(target)
        return 200, envelope(operation("op-x", 200 if len(polls) >= 3 else 103))

    with running_ws_server([], then_drop=True) as server:
        server.ping_first, server.http = True, http
        api = apitx.API.factory(server.server_address)
        started = api.get("/async/op-x")
        [done] = api.wait_all([started], timeout=10)
    assert done.metadata["status"] == "Success"
    assert server.targets[1] == "/1.0/events?type=operation"
    # The check once the stream was confirmed, then 1 s polls once it dropped.
    assert polls == ["/1.0/operations/op-x/wait?timeout=0"] + \
        ["/1.0/operations/op-x/wait?timeout=1"] * 2
