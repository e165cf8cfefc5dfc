"""wait(progress=) from events, and wait_all(): live on LXD and Incus, and without events."""

from __future__ import annotations

import io
import json
import os
import uuid
from typing import Callable, Dict, Iterator

import pytest

import apitx
from apitx.testing import Answer, MockRequest, MockTransport, operation

from canned import FAILED_WAITS, NOT_AN_OPERATION, running, succeeded
from hostile import envelope
from hostile_ws import running_ws_server
from sandbox import SERVER_BY_NAME, SERVERS, instance_config, remove_instance

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


@pytest.fixture(scope="module")
def slow_image() -> Iterator[Callable[[str], str]]:
    """``slow_image(daemon)``: the alias of an image on that daemon whose
    unpacking takes ~0.3 s (20 MB of random data), published at first use.

    A wait's first check comes 2-4 ms after the POST, but the busybox image
    (1 MB) unpacks in ~35 ms, which a pause of the test process (a garbage
    collection over all the suite made, say) can outlast: the creation then
    ends before the wait looks, with no update left to see (CI, once).
    """
    made: Dict[str, tuple] = {}

    def alias_on(daemon: str) -> str:
        if daemon not in made:
            api = apitx.API.factory(SERVER_BY_NAME[daemon].socket)
            source, alias = f"apitx-{uuid.uuid4().hex[:10]}", f"apitx-slow-{uuid.uuid4().hex[:8]}"
            try:
                api.post("instances", json=instance_config(source)).wait(60)
                api.files(source).push("/root/data.bin", io.BytesIO(os.urandom(20_000_000)))
                published = api.post("images", json={"source": {"type": "instance",
                                                                 "name": source},
                                                      "aliases": [{"name": alias}]}).wait(120)
            finally:
                remove_instance(api, source)
            made[daemon] = (api, published.metadata["metadata"]["fingerprint"], alias)
        return made[daemon][2]

    yield alias_on
    for api, fingerprint, _ in made.values():
        api.delete(f"images/{fingerprint}").wait(60)
        api.close()


# -- wait(progress=) ---------------------------------------------------------------

@pytest.mark.live
@pytest.mark.parametrize("daemon", DAEMONS)
def test_progress_sees_every_update_of_an_instance_creation(live, live_api, daemon,
                                                            slow_image):
    api = live_api(daemon)
    name = f"apitx-{uuid.uuid4().hex[:10]}"
    image = slow_image(daemon)
    seen: list = []
    # An independent stream, open before the operation starts, sees every update.
    with api.events(types=["operation"], timeout=60) as stream:
        try:
            started = api.post("instances", json={
                "name": name, "source": {"type": "image", "alias": image}})
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
def test_progress_of_a_running_exec_and_its_result_equal_the_polled_ones(live, live_api, daemon):
    api, instance = live_api(daemon), live.instance(daemon)
    started = start(api, instance, "sleep", "2")
    seen: list = []
    done = started.wait(timeout=30, progress=seen.append)
    assert done.data == started.wait(timeout=30).data  # the old long-poll, once more
    assert done.metadata["metadata"]["return"] == 0
    assert len(seen) >= 2 and {answer.metadata["status"] for answer in seen} == {"Running"}
    assert {answer.metadata["id"] for answer in seen} == {started.metadata["id"]}
    assert all(answer.operation == started.operation for answer in seen)


@pytest.mark.live
def test_progress_still_times_out_as_asked(live, live_api):
    api, instance = live_api("lxd"), live.instance("lxd")
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
def test_wait_all_returns_twenty_execs_in_order_over_one_connection(live, live_api, daemon,
                                                                     socket_connects):
    api, instance = live_api(daemon), live.instance(daemon)
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
def test_wait_all_raises_the_first_failure_as_wait_does(live, live_api, daemon):
    api, instance = live_api(daemon), live.instance(daemon)
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
def test_wait_all_returns_failures_in_place(live, live_api, daemon):
    api, instance = live_api(daemon), live.instance(daemon)
    started = [start(api, instance, "sleep", "1"), start(api, instance, "/nonexistent"),
               api.get(""), start(api, instance, "true")]
    done = api.wait_all(started, timeout=60, return_exceptions=True)
    assert done[0].metadata["status"] == "Success"
    assert isinstance(done[1], apitx.APIException) and done[1].status_code == 400
    assert done[2] is started[2]  # not an operation: passed through, as wait() does
    assert done[3].metadata["metadata"]["return"] == 0


@pytest.mark.live
@pytest.mark.parametrize("daemon", DAEMONS)
def test_wait_all_returns_an_operation_that_ended_before_it_was_called(live, live_api, daemon):
    api, instance = live_api(daemon), live.instance(daemon)
    ended = start(api, instance, "true")
    ended.wait(timeout=30)  # LXD forgets it about 5 s after it ends: go on at once
    running = start(api, instance, "sleep", "1")
    done = api.wait_all([ended, running], timeout=30)
    assert [answer.metadata["id"] for answer in done] == [ended.metadata["id"],
                                                          running.metadata["id"]]
    assert {answer.metadata["status"] for answer in done} == {"Success"}


@pytest.mark.live
def test_wait_all_times_out_naming_the_first_still_running(live, live_api):
    api, instance = live_api("lxd"), live.instance("lxd")
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


def one_operation(polls: list, answer_poll):
    """A hostile server's ``http()``: ``/async/...`` starts operation op-x
    (202); every other target is a poll, recorded in ``polls`` and answered
    by ``answer_poll(number_of_polls_so_far)``."""
    def http(target: str):
        if target.startswith("/async/"):
            return 202, envelope(operation("op-x", 103), type_="async", status_code=100,
                                 operation="/1.0/operations/op-x")
        polls.append(target)
        return answer_poll(len(polls))
    return http


def test_a_stream_that_drops_midway_falls_back_to_polling():
    # The stream pings (registered), then drops; the operation is polled to its end.
    polls: list = []
    http = one_operation(polls, lambda n: (200, envelope(operation("op-x", 200 if n >= 3
                                                                   else 103))))

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


@pytest.mark.parametrize("progress", [None, print], ids=["wait_all", "progress"])
def test_an_operation_no_event_mentions_is_polled_and_its_failure_heard(monkeypatch, progress):
    """In a cluster, the member apitx talks to keeps pinging the stream while
    the member running the operation is dead: no event will end it. A copy
    into a cluster whose target member was killed waited 15 minutes for one.
    An operation unheard of for RECHECK_SECONDS is polled, and the member's
    answer (500 naming the dead member) ends the wait."""
    monkeypatch.setattr("apitx._waiting.RECHECK_SECONDS", 0.5)
    polls: list = []
    http = one_operation(polls, lambda n: (200, envelope(operation("op-x", 103))) if n == 1
                         else (500, envelope(None, type_="error", error_code=500,
                                             error="Failed to connect to member m3")))

    with running_ws_server([], then_drop=False) as server:
        server.ping_first, server.ping_every, server.http = True, 0.2, http
        api = apitx.API.factory(server.server_address)
        started = api.get("/async/op-x")
        with pytest.raises(apitx.APIException, match="Failed to connect to member m3"):
            if progress is None:
                api.wait_all([started], timeout=8)
            else:
                started.wait(8, progress=progress)
        server.release.set()
    assert server.targets[1] == "/1.0/events?type=operation"
    assert polls == ["/1.0/operations/op-x/wait?timeout=0"] * 2


# -- deadlines, projects, servers (issue 16) ---------------------------------------

@pytest.mark.live
@pytest.mark.parametrize("daemon", DAEMONS)
def test_wait_all_timeout_is_a_deadline_whatever_the_pings(live, live_api, daemon):
    """LXD and Incus ping the event stream every 10 s. Each ping used to
    restart the wait, so wait_all(timeout=11) on a 25 s command returned it,
    ended, at 25 s. The timeout is a deadline for the whole wait."""
    api, instance = live_api(daemon), live.instance(daemon)
    pid_file = f"/tmp/apitx-deadline-{uuid.uuid4().hex[:8]}"
    started = start(api, instance, "sh", "-c", f"echo $$ > {pid_file}; exec sleep 25")
    with pytest.raises(apitx.OperationTimeout) as info:
        api.wait_all([started], timeout=11)
    assert info.value.result.running  # given up on while it still ran
    # The deadline is proven at 11 s: end the sleep rather than wait 14 s more
    # (a killed sleep returns 128 + SIGTERM).
    api.wait_all([start(api, instance, "sh", "-c", f"kill $(cat {pid_file}); rm {pid_file}")],
                 timeout=30)
    [ended] = api.wait_all([started], timeout=30)
    assert ended.metadata["metadata"]["return"] == 143


@pytest.fixture
def project(live, daemon):
    """A project of its own (sharing the default project's images and
    profiles, so the busybox image and root disk serve it), removed after."""
    api = live.api(daemon)
    name = f"apitx-p-{uuid.uuid4().hex[:8]}"
    api.post("projects", json={"name": name, "config": {
        "features.images": "false", "features.profiles": "false"}})
    yield name
    api.delete(f"projects/{name}", validate=False)


@pytest.mark.live
@pytest.mark.parametrize("daemon", DAEMONS)
def test_operations_of_another_project_are_waited_on_through_their_project(
        live, live_api, daemon, project):
    """LXD 5.0.2 names an operation without ?project=: an event stream of the
    API's own project never sees it end, and wait(progress=) and wait_all()
    blocked until their timeout. They now watch the project the request named."""
    api = live_api(daemon)  # its own project: the default
    name = f"apitx-{uuid.uuid4().hex[:10]}"
    config = instance_config(name)
    try:
        created = api.post("instances", params={"project": project}, json=config)
        seen: list = []
        done = created.wait(timeout=60, progress=seen.append)
        assert done.metadata["status"] == "Success"
        api.put(f"instances/{name}/state", params={"project": project},
                json={"action": "start"}).wait(60)
        mixed = [api.post(f"instances/{name}/exec", params={"project": project}, json={
            "command": ["sleep", "1"], "record-output": False, "wait-for-websocket": False,
            "interactive": False}), start(api, live.instance(daemon), "sleep", "1")]
        outcomes = api.wait_all(mixed, timeout=60)  # two projects: one stream of all
        assert [each.metadata["metadata"]["return"] for each in outcomes] == [0, 0]
    finally:
        remove_instance(api.using(project=project), name)


def test_wait_all_refuses_results_of_another_server():
    """wait_all() polled the wrong server for another API's results (it said
    an Incus operation 'ended and was forgotten' while it ran)."""
    def server(request: MockRequest) -> Answer:
        return Answer.operation(operation("op1", 103))

    ours = apitx.API.factory("https://a.test:8443", transport=MockTransport(server))
    theirs = apitx.API.factory("https://b.test:8443", transport=MockTransport(server))
    mine, other = ours.post("instances", json={}), theirs.post("instances", json={})
    with pytest.raises(apitx.RequestError, match=r"result 1 .*b\.test.*another server.*"
                                                 r"nothing was waited on"):
        ours.wait_all([mine, other], timeout=1)


@pytest.mark.live
@pytest.mark.parametrize("daemon", DAEMONS)
def test_a_failed_operation_names_the_request_that_started_it(live, live_api, daemon):
    """After a 202, the failure used to name only the poll (GET …/wait): it
    names the request the caller sent, the operation, and the poll."""
    api, instance = live_api(daemon), live.instance(daemon)
    started = api.post("instances", json=instance_config(instance))  # the name is taken
    with pytest.raises(apitx.APIException) as info:
        started.wait(timeout=60)
    message = str(info.value)
    assert message.startswith(f"POST {api.endpoint.display} /1.0/instances: operation "
                              f"{started.metadata['id']} (GET ")
    # The poll that saw it fail (Incus: the operation itself, after its /wait).
    assert f"/1.0/operations/{started.metadata['id']}" in message.split(" (GET ", 1)[1]
    assert message.endswith(f") failed: {info.value.error}")
    assert info.value.started.operation == started.operation  # the answer to the POST
    assert info.value.error.startswith("Failed creating instance record")  # the server's words
    with pytest.raises(apitx.APIException) as again:
        api.wait_all([api.post("instances", json=instance_config(instance))], timeout=60)
    assert str(again.value).startswith(f"POST {api.endpoint.display} /1.0/instances: ")


@pytest.mark.live
def test_websockets_move_on_from_a_dead_member(live):
    """events() and websocket() against [dead, alive] used to fail on the
    dead one (requests moved on, websockets did not; wait_all then polled in
    silence). Nothing listens on port 1: the connect is refused, nothing sent."""
    from sandbox import SANDBOX_HTTPS, HTTPS_OPTIONS

    with apitx.API.factory(["https://127.0.0.1:1", SANDBOX_HTTPS], **HTTPS_OPTIONS) as api:
        with api.events(types=["operation"]) as stream:
            assert stream.confirm(5)
        assert api.endpoint.base_url == SANDBOX_HTTPS
    with apitx.API.factory(["https://127.0.0.1:1", SANDBOX_HTTPS], **HTTPS_OPTIONS) as api:
        with api.websocket("events", {"type": "lifecycle"}):
            pass
        assert api.endpoint.base_url == SANDBOX_HTTPS
