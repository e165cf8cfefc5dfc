"""apitx against a real 3-member LXD 5.0.2 cluster (``scripts/lxd-cluster up``).

What only a cluster shows: requests and operations forwarded between
members, an operation's ``location``, a member dying while a caller waits
on its operation through another member, and a cluster that lost quorum.
Every test talks HTTPS to the members, as a remote client does.

The two destructive tests kill members by PID and restore them with
``scripts/lxd-cluster up`` whatever happens; they come last in this file
(pytest keeps file order), so the others always see a whole cluster.
"""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
import threading
import time
from typing import Any, Callable, Dict, Iterator, Optional, Tuple
from urllib.parse import urlsplit

import pytest

import apitx
from apitx import _waiting
from cluster import (CLUSTER_CRT, MEMBER_OPTIONS, MEMBERS, cluster_problem, create_instance,
                     delete_instance, kill_member, member_api, member_pid, new_name,
                     restore_cluster, start_exec)

# The cluster plugin (tests/cluster.py) fails these when the cluster is not up;
# live too: they need servers, so `-m "not live"` must leave them out.
pytestmark = [pytest.mark.cluster, pytest.mark.live]

#: The client read timeout of the quorum test: what a request should end at.
QUORUM_READ_TIMEOUT = 3.0


@pytest.fixture(scope="module")
def running() -> Iterator[Dict[str, str]]:
    """A running busybox instance on m2 and one on m3, created through m1:
    ``{'m2': name, 'm3': name}``. Removed at the end, through m1."""
    names = {target: new_name() for target in ("m2", "m3")}
    with member_api("m1") as m1:
        try:
            for target, name in names.items():
                create_instance(m1, name, target, start=True)
            yield names
        finally:
            for name in names.values():
                delete_instance(m1, name)


def test_three_members_online(members: Dict[str, Any]) -> None:
    listed = members["m1"].get("cluster/members", params={"recursion": 1}).metadata
    assert {m["server_name"]: (m["url"], m["status"]) for m in listed} == {
        name: (url, "Online") for name, url in MEMBERS.items()}
    # Three daemons, not one answering thrice: each says who it is.
    for name, api in members.items():
        env = api.get("").metadata["environment"]
        assert (env["server_name"], env["server_clustered"]) == (name, True)


def test_every_member_runs_from_the_root_directory() -> None:
    # What a daemon runs (rsync, for snapshots and migrations) inherits its
    # directory: a checkout deleted under it made each of those fail with
    # "getcwd(): No such file or directory". scripts/lxd-cluster starts it in /.
    assert {name: os.readlink(f"/proc/{member_pid(name)}/cwd") for name in MEMBERS} == {
        name: "/" for name in MEMBERS}


def test_every_member_presents_the_pinned_certificate() -> None:
    """The certificate scripts/lxd-cluster copies is the one to pin: every
    member presents it (and it names no 127.0.1.x address, hence pinning)."""
    with open(CLUSTER_CRT) as f:
        pinned = ssl.PEM_cert_to_DER_cert(f.read())
    for url in MEMBERS.values():
        host, port = urlsplit(url).hostname, urlsplit(url).port
        assert ssl.PEM_cert_to_DER_cert(ssl.get_server_certificate((host, port))) == pinned, url


def test_target_places_instance_on_that_member(members: Dict[str, Any]) -> None:
    name = new_name()
    try:
        create_instance(members["m1"], name, "m2")
        # Any member answers for any instance, with where it lives.
        for api in members.values():
            assert api.get(f"instances/{name}").metadata["location"] == "m2"
    finally:
        delete_instance(members["m1"], name)


def test_wait_through_another_member(members: Dict[str, Any],
                                     running: Dict[str, str]) -> None:
    """An operation running on m2, started and waited on through m1."""
    started = start_exec(members["m1"], running["m2"], "/bin/sleep", "1")
    assert (started.metadata["location"], started.metadata["status"]) == ("m2", "Running")
    done = started.wait(timeout=30)
    assert done.request.url.startswith(MEMBERS["m1"] + "/1.0/operations/")
    op = done.metadata
    assert (op["location"], op["status"], op["metadata"]["return"]) == ("m2", "Success", 0)


@pytest.mark.sync_only  # it watches requests' response hook
def test_wait_long_polls_a_forwarded_operation(members: Dict[str, Any],
                                               running: Dict[str, str]) -> None:
    """wait() on an operation m1 forwarded to m2 long-polls its /wait: one
    request for an operation of 2 s, not one per round trip."""
    started = start_exec(members["m1"], running["m2"], "/bin/sleep", "2")
    sent: list = []
    # requests' own response hook observes what went out; nothing is replaced.
    members["m1"].session.hooks["response"].append(
        lambda response, *args, **kwargs: sent.append(urlsplit(response.request.url)))
    started.wait(timeout=30)
    assert {url.path for url in sent} == {f"/1.0/operations/{started.metadata['id']}/wait"}
    assert len(sent) <= 2, f"{len(sent)} requests to wait for a 2 s operation"


def test_operations_on_one_member_list_those_of_others(members: Dict[str, Any],
                                                       running: Dict[str, str]) -> None:
    started = start_exec(members["m3"], running["m3"], "/bin/sleep", "2")
    op_id = started.metadata["id"]
    listed = members["m1"].get("operations", params={"recursion": 1}).metadata
    assert [op["location"] for op in listed.get("running", []) if op["id"] == op_id] == ["m3"]
    started.wait(timeout=30)


def test_events_through_one_member_come_from_every_member(members: Dict[str, Any]) -> None:
    """An events stream opened on m1 sees what happens on m2 and m3, each
    event with the ``location`` of the member it happened on."""
    names = {target: new_name() for target in ("m2", "m3")}
    seen: Dict[str, str] = {}
    with members["m1"].events(types=["lifecycle"], timeout=30) as stream:
        try:
            for target, name in names.items():
                create_instance(members["m1"], name, target)
            for event in stream:
                source = event.metadata.get("source", "")
                for target, name in names.items():
                    if source == f"/1.0/instances/{name}" and \
                            event.metadata.get("action") == "instance-created":
                        seen[name] = event.location
                if len(seen) == len(names):
                    break
        finally:
            for name in names.values():
                delete_instance(members["m1"], name)
    assert seen == {name: target for target, name in names.items()}


def test_a_frozen_member_fails_the_waits_that_follow_its_events(
        client_kind: str, running: Dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A daemon stopped with SIGSTOP answers nothing, not even its keepalive
    pings. wait() ended with APITimeoutError (its poll's read timeout), but
    wait(progress=) and wait_all() follow the event stream and were still
    blocked 75 s later. A stream silent for SILENCE seconds (40 in use; 3
    here, to keep the test short) now fails them the same way, in threads
    of the sync client as in tasks of the async one."""
    monkeypatch.setattr(_waiting, "SILENCE", 3.0)
    pid = member_pid("m3")
    freeze = lambda: os.kill(pid, signal.SIGSTOP)  # noqa: E731 - named for the drivers
    try:
        errors = FROZEN_DRIVERS[client_kind](running["m3"], freeze)
    finally:
        os.kill(pid, signal.SIGCONT)
        restore_cluster()
    assert sorted(errors) == ["all", "progress"]
    for error in errors.values():
        assert isinstance(error, apitx.APITimeoutError), repr(error)
    assert "not even the server's keepalive ping" in str(errors["progress"])
    assert cluster_problem() is None


def _frozen_in_threads(instance: str, freeze: Callable[[], None]) -> Dict[str, BaseException]:
    """Both waits on a sleep in ``instance`` through m3, each in a thread;
    m3 frozen once wait(progress=) reported. What each raised, by kind."""
    errors: Dict[str, BaseException] = {}
    with member_api("m3") as api:
        started = start_exec(api, instance, "/bin/sleep", "60")
        reported = threading.Event()

        def wait(kind: str) -> None:
            try:
                if kind == "progress":
                    started.wait(timeout=120, progress=lambda answer: reported.set())
                else:
                    api.wait_all([started], timeout=120)
            except BaseException as exc:  # noqa: BLE001 - the test inspects whatever it is
                errors[kind] = exc

        waiters = [threading.Thread(target=wait, args=(kind,), daemon=True)
                   for kind in ("progress", "all")]
        for waiter in waiters:
            waiter.start()
        assert reported.wait(30), "wait(progress=) reported nothing while m3 still ran"
        freeze()
        for waiter in waiters:
            waiter.join(90)  # a hang guard only
        assert not any(waiter.is_alive() for waiter in waiters), "a wait outlived the silence"
    return errors


def _frozen_in_tasks(instance: str, freeze: Callable[[], None]) -> Dict[str, BaseException]:
    """_frozen_in_threads with the async client: both waits are tasks of one loop."""
    async def run() -> Dict[str, BaseException]:
        async with apitx.AsyncAPI.factory(MEMBERS["m3"], **MEMBER_OPTIONS) as api:
            started = await start_exec(api, instance, "/bin/sleep", "60")
            reported = asyncio.Event()
            waits = {
                "progress": asyncio.ensure_future(
                    started.wait(timeout=120, progress=lambda answer: reported.set())),
                "all": asyncio.ensure_future(api.wait_all([started], timeout=120))}
            await asyncio.wait_for(reported.wait(), 30)
            freeze()
            _, pending = await asyncio.wait(waits.values(), timeout=90)  # a hang guard only
            assert not pending, "a wait outlived the silence"
            return {kind: task.exception() for kind, task in waits.items()
                    if task.exception() is not None}
    return asyncio.run(run())


FROZEN_DRIVERS = {"sync": _frozen_in_threads, "async": _frozen_in_tasks}


def test_member_killed_during_wait_fails_the_wait(client_kind: str,
                                                  running: Dict[str, str]) -> None:
    """m3 dies while a caller waits on m3's operation through m1: the wait
    raises APIException naming the operation, long before its own timeout."""
    caller_timeout = 30
    try:
        op_id, error, took = KILLED_DRIVERS[client_kind](running["m3"], caller_timeout)
    finally:
        restored = restore_cluster()
    # APIException, not the wait's own OperationTimeout: m3's death ended it.
    assert type(error) is apitx.APIException, f"expected APIException, got {error!r}"
    print(f"\n{client_kind}: wait failed {took:.2f} s after m3 was killed: {error}\n"
          f"scripts/lxd-cluster up restored m3 in {restored:.2f} s")
    assert op_id in str(error)
    # LXD's own words name the member that went away (its address).
    assert MEMBERS["m3"].split("//")[1] in error.error
    assert cluster_problem() is None


#: The pause before the kill, to let the wait reach m1 and be forwarded to m3.
#: No server-side signal says it has; if the kill came first, m1's forward is
#: refused instead of cut, and the test's assertions hold all the same.
FORWARDED = 0.5

#: What a killed-while-waiting driver gives: the operation's id, what the
#: wait raised, and how long after the kill it ended.
Killed = Tuple[str, Optional[BaseException], float]


def _killed_in_a_thread(instance: str, timeout: float) -> Killed:
    """A sleep in ``instance`` started through m1 and waited on in a thread,
    m3 killed meanwhile."""
    outcome: Dict[str, Any] = {}
    with member_api("m1") as api:
        started = start_exec(api, instance, "/bin/sleep", str(timeout))

        def wait() -> None:
            try:
                started.wait(timeout=timeout)
            except Exception as exc:  # noqa: BLE001 - the test inspects whatever it is
                outcome["error"] = exc
            outcome["ended"] = time.monotonic()

        waiter = threading.Thread(target=wait, daemon=True)
        waiter.start()
        time.sleep(FORWARDED)
        killed = time.monotonic()
        kill_member("m3")
        waiter.join(timeout + 15)
        assert not waiter.is_alive(), "wait() still blocked after its own timeout"
    return started.metadata["id"], outcome.get("error"), outcome["ended"] - killed


def _killed_in_a_task(instance: str, timeout: float) -> Killed:
    """_killed_in_a_thread with the async client: the wait is a task."""
    async def run() -> Killed:
        async with apitx.AsyncAPI.factory(MEMBERS["m1"], **MEMBER_OPTIONS) as api:
            started = await start_exec(api, instance, "/bin/sleep", str(timeout))
            waiting = asyncio.ensure_future(started.wait(timeout=timeout))
            await asyncio.sleep(FORWARDED)
            killed = time.monotonic()
            await asyncio.to_thread(kill_member, "m3")
            done, _ = await asyncio.wait([waiting], timeout=timeout + 15)
            assert done, "wait() still blocked after its own timeout"
            return started.metadata["id"], waiting.exception(), time.monotonic() - killed
    return asyncio.run(run())


KILLED_DRIVERS = {"sync": _killed_in_a_thread, "async": _killed_in_a_task}


def test_an_api_on_every_member_passes_over_a_dead_one(client_of: Callable[..., Any],
                                                       caplog: pytest.LogCaptureFixture) -> None:
    """API.factory([m1, m2, m3]) with m1 dead: a GET and a POST go to m2
    (nothing reached m1, so any method may move on), each attempt traced."""
    name = new_name()
    try:
        kill_member("m1")
        api = client_of(list(MEMBERS.values()), **dict(MEMBER_OPTIONS, trace=True))
        with caplog.at_level("DEBUG", "apitx"):
            sent = time.monotonic()
            api.get("")  # needs no cluster database: the failover alone
            took = time.monotonic() - sent
            assert api.endpoint.base_url == MEMBERS["m2"]
            sent = time.monotonic()
            listed = api.get("cluster/members").metadata
            stalled = time.monotonic() - sent
            assert len(listed) == 3
            # target= from the API's defaults, not from the request.
            api.using(target="m3").post("instances", json={
                "name": name, "source": {"type": "image", "alias": "apitx-busybox"}}).wait(120)
            assert api.get(f"instances/{name}").metadata["location"] == "m3"
            delete_instance(api, name)
        print(f"\nwith m1 dead, GET /1.0 took {took:.3f} s (m1 refused, m2 answered); "
              f"GET cluster/members {stalled:.1f} s (the database elects a new leader)")
        # m1 refused and m2 answered: one move, traced.
        moved = [r.getMessage() for r in caplog.records if "trying " in r.getMessage()]
        assert len(moved) == 1 and "127.0.1.1:8443" in moved[0] and MEMBERS["m2"] in moved[0]
    finally:
        restore_cluster()
    assert cluster_problem() is None


def test_lost_quorum_ends_at_the_client_timeout(members: Dict[str, Any]) -> None:
    """With two of three members dead, m1 answers nothing that needs the
    cluster database: a request ends at its client timeout, never hangs."""
    timeout = apitx.Timeout(connect=2, read=QUORUM_READ_TIMEOUT)
    try:
        kill_member("m2")
        kill_member("m3")
        # m1 keeps answering for about a second, until the database notices
        # the lost quorum: poll until a request times out, with a deadline.
        deadline = time.monotonic() + 20
        while True:
            assert time.monotonic() < deadline, "m1 still answered 20 s after quorum was lost"
            sent = time.monotonic()
            try:
                members["m1"].get("instances", timeout=timeout)
            except apitx.APITimeoutError as exc:
                error, took = exc, time.monotonic() - sent
                break
            time.sleep(0.2)
    finally:
        restored = restore_cluster()
    print(f"\nwithout quorum a GET ended after {took:.2f} s "
          f"(read timeout {QUORUM_READ_TIMEOUT} s): {error}\n"
          f"scripts/lxd-cluster up restored m2 and m3 in {restored:.2f} s")
    # The read timeout ended it (not the connect timeout, not a hang: the
    # loop's deadline guards that); how close to it, the figure printed above.
    assert type(error) is apitx.APITimeoutError
    assert "timed out waiting for the answer" in str(error)
    assert MEMBERS["m1"] in str(error)
    assert cluster_problem() is None
