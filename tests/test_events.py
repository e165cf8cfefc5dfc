"""events(): the real event stream, closing it from another thread, and a drop."""

from __future__ import annotations

import json
import math
import threading
import time
import uuid

import pytest

import apitx
from apitx._event import Event
from apitx._events import events
from sandbox import SERVERS, instance_config, remove_instance
from hostile_ws import running_ws_server
from live import TARGETS

#: The sockets first, then HTTPS.
DAEMONS = sorted(TARGETS, key=lambda name: name.endswith("-https"))


@pytest.mark.live
@pytest.mark.parametrize("daemon", DAEMONS)
def test_an_instance_lifecycle_shows_as_events(live, live_api, daemon):
    api = live_api(daemon)
    name = f"apitx-{uuid.uuid4().hex[:10]}"
    with api.events(types=["lifecycle", "operation"], timeout=60) as stream:
        try:
            api.post("instances", json=instance_config(name)).wait(timeout=120)
            api.put(f"instances/{name}/state", json={"action": "start"}).wait(60)
        finally:
            remove_instance(api, name)
        seen = []
        for event in stream:
            seen.append(event)
            if event.type == "lifecycle" and event.metadata.get("action") == "instance-deleted" \
                    and event.metadata.get("source", "").endswith(f"/instances/{name}"):
                break
    actions = [e.metadata["action"] for e in seen if e.type == "lifecycle"
               and e.metadata.get("source", "").endswith(f"/instances/{name}")]
    assert actions[0] == "instance-created" and actions[-1] == "instance-deleted"
    assert "instance-started" in actions
    operations = [e for e in seen if e.type == "operation"]
    # Other operations on the shared daemon come too, some without instances.
    assert any(e.metadata["status"] == "Success" and
               f"/1.0/instances/{name}" in ((e.metadata.get("resources") or {})
                                            .get("instances") or [])
               for e in operations)
    assert all(e.project == "default" and e.timestamp for e in seen)


@pytest.mark.sync_only  # threads; async: a cancelled task (tests/test_aio.py)
@pytest.mark.live
def test_close_from_another_thread_ends_a_blocked_iteration(live, live_api):
    stream = events(live_api("lxd"), types=["lifecycle"])
    ended = threading.Event()

    def consume() -> None:
        for _ in stream:  # blocks between events (the daemon is shared: some may come)
            pass
        ended.set()

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    time.sleep(0.2)  # let it block in recv
    assert not ended.is_set()
    stream.close()
    # A hang guard, not a measure: without close() ending it the reader
    # would block until the next event, which may never come. How soon it
    # ends is measured by bench/deadlines.py.
    reader.join(60)
    assert ended.is_set(), "close() from another thread did not end the blocked iteration"
    assert list(stream) == []  # stays ended


def test_timeout_bounds_the_wait_for_the_next_event():
    # A server that stays silent (the shared LXD may have events at any
    # time) and keeps the connection for 10 s: a timeout that were not
    # honoured would end in the drop (APIConnectionError), not in this.
    # How close to 0.3 s it ends: bench/deadlines.py.
    with running_ws_server([], then_drop=False) as server:
        with events(apitx.API.factory(server.server_address), timeout=0.3) as stream:
            with pytest.raises(apitx.APITimeoutError, match=r"no event in 0.3s"):
                next(stream)


def test_keepalive_pings_do_not_extend_the_timeout():
    """LXD pings every stream every 10 s; events(timeout=12) never timed out,
    because each ping restarted the read timeout. The timeout is a deadline
    for the next event, pings or not: here pings come every 0.05 s, and the
    stream must still end its wait (a reader thread would hang otherwise)."""
    with running_ws_server([], then_drop=False) as server:
        server.ping_every = 0.05
        with events(apitx.API.factory(server.server_address), timeout=0.5) as stream:
            outcome: dict = {}

            def read() -> None:
                try:
                    next(stream)
                except apitx.APITXError as exc:
                    outcome["error"] = exc

            reader = threading.Thread(target=read, daemon=True)
            reader.start()
            reader.join(30)  # a hang guard only: the deadline is 0.5 s
            assert not reader.is_alive(), "pings kept the wait for an event alive"
        assert isinstance(outcome["error"], apitx.APITimeoutError)
        assert "no event in 0.5s" in str(outcome["error"])


@pytest.mark.parametrize("timeout", [math.nan, -5, -1, 0, math.inf, "5", True])
def test_a_timeout_that_is_not_seconds_is_refused_before_connecting(timeout, socket_connects):
    with pytest.raises(apitx.RequestError, match=r"events\(timeout=...\).*nothing was sent"):
        events(apitx.API.factory("/nonexistent/apitx.socket"), timeout=timeout)
    assert socket_connects == []


def test_a_dropped_stream_raises_after_the_events_it_sent():
    event = {"type": "lifecycle", "timestamp": "2026-11-21T00:00:00Z", "location": "m1",
             "project": "p", "metadata": {"action": "instance-started"}}
    with running_ws_server([json.dumps(event)], then_drop=True) as server:
        stream = events(apitx.API.factory(server.server_address))
        assert next(stream) == Event("lifecycle", "2026-11-21T00:00:00Z", "m1", "p",
                                     {"action": "instance-started"})
        with pytest.raises(apitx.APIConnectionError, match="events may have been missed"):
            next(stream)


def test_a_message_that_is_not_an_event_raises():
    with running_ws_server(["not json"], then_drop=False) as server:
        with events(apitx.API.factory(server.server_address)) as stream:
            with pytest.raises(apitx.APIConnectionError, match="not a JSON event"):
                next(stream)


def test_filters_become_query_parameters():
    with running_ws_server([], then_drop=False) as server:
        api = apitx.API.factory(server.server_address)
        events(api, types=["lifecycle", "operation"], all_projects=True).close()
        events(api, types="logging", project="web").close()
    assert server.targets == ["/1.0/events?type=lifecycle%2Coperation&all-projects=true",
                              "/1.0/events?type=logging&project=web"]


@pytest.mark.live
@pytest.mark.parametrize("daemon", [server.name for server in SERVERS])
def test_confirm_waits_for_the_first_ping_that_says_the_stream_is_registered(live, live_api, daemon):
    with events(live_api(daemon), types=["operation"]) as stream:
        assert stream.confirm(5.0)
        assert stream.confirm(0)  # once is enough


def test_confirm_is_false_without_a_ping_and_keeps_what_came_first():
    event = {"type": "operation", "metadata": {"id": "x"}}
    with running_ws_server([json.dumps(event)], then_drop=False) as server:
        with events(apitx.API.factory(server.server_address), timeout=2) as stream:
            assert not stream.confirm(0.3)
            assert next(stream).metadata == {"id": "x"}  # kept for iteration
            # confirm() gave up on its own clock, while the server still held
            # the connection (it drops it after 10 s): the stream is open and
            # silent. How close to 0.3 s it gives up: bench/deadlines.py.
            with pytest.raises(apitx.APITimeoutError, match=r"no event in 2s"):
                next(stream)
