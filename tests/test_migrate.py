"""apitx.migrate against real servers: LXD 5.0.2 and Incus 6.0.4, two of each.

The sandbox's LXD and Incus (scripts/lxd-sandbox) and the pair's lxd2 and
incus2 (scripts/lxd-pair); the cluster tests also need scripts/lxd-cluster.
Every copy is checked by content: a file of random bytes is pushed into the
source instance and its sha256 compared with the copy's (read back through
the file API). Every failure the issue lists has its test, on real daemons:
a name taken on the target, a full target pool (a 24 MiB tmpfs pool), a
target that cannot be reached, a certificate that does not match, the source
deleted mid-copy, the source's or the target's daemon killed mid-copy (the
pair's own daemons, brought back by scripts/lxd-pair up: those tests have
``killed`` in their names). Whatever a test makes is deleted at the end,
whatever happens.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import socket
import tarfile
import threading
import time
from typing import Any, Callable, Iterator, List, Optional, Tuple

import pytest

import apitx
from apitx import migrate
from apitx.ensure import file_fingerprint  # the sha256 of a file
from apitx._migration import Job, Peer, migrate as run_migration, remove_created
from cluster import kill_member, member_api, restore_cluster
from pair import CLIENT_CERT, HTTPS, SERVER_CERTS, SMALL_POOL, ROOT, kill, pair_up
from sandbox import remove_instance
from workloads import (DATA, IMAGE, Made, absent, running_migrations, running_operations,
                       sha256_in, sha256_inside, snapshots, workload)

pytestmark = pytest.mark.live

MODES = ["pull", "push", "relay"]


class KillMidCopy:
    """A ``progress=`` that kills a daemon at the relay's first count (the
    copy is running) and brings it back: in a thread, as a service manager
    would (``at_once``: before the callback returns, so the daemon is back
    before apitx looks at the failure); or, with ``later``, only at
    :meth:`join`. :meth:`join` waits for the revival (or revives, when the
    kill never came, so the next test finds the daemon)."""

    def __init__(self, kill: Callable[[], None], revive: Callable[[], Any],
                 when: str = "thread") -> None:
        self.kill, self.revive, self.when = kill, revive, when
        self.killed = False
        self.thread: Optional[threading.Thread] = None

    def __call__(self, update: migrate.TransferProgress) -> None:
        if update.stage != "relay" or self.killed:
            return
        self.killed = True
        self.kill()
        if self.when == "at_once":
            self.revive()
        elif self.when == "thread":
            self.thread = threading.Thread(target=self.revive)
            self.thread.start()

    def join(self) -> None:
        if self.thread is not None:
            self.thread.join(300)
        elif self.when == "later" or not self.killed:
            self.revive()


def copied_while_killed(source: apitx.API, name: str, target: apitx.API, killer: KillMidCopy,
                        **options: Any) -> apitx.MigrationError:
    """Copy ``name`` (relay) while ``killer`` kills a daemon; the error raised."""
    try:
        with pytest.raises(apitx.MigrationError) as caught:
            migrate.copy_instance(source, name, target, mode="relay", progress=killer, **options)
    finally:
        killer.join()
    assert killer.killed, "the copy ended before the kill"
    return caught.value


# -- instances: every pair, every mode ---------------------------------------------------

#: (source, target, snapshots): LXD to LXD, Incus to Incus, and across. Incus
#: to LXD goes without snapshots (with them it is refused: a test below).
PAIRS = [("lxd", "lxd2", True), ("incus", "incus2", True), ("lxd", "incus2", True),
         ("incus", "lxd2", False)]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("source, target, with_snapshots", PAIRS,
                         ids=[f"{s}-{t}" for s, t, _ in PAIRS])
def test_copy_instance(apis, made, tmp_path, source, target, with_snapshots, mode):
    name = made.name(source, target)
    digest = workload(apis[source], name, tmp_path)
    updates: List[migrate.TransferProgress] = []
    done = migrate.copy_instance(apis[source], name, apis[target], mode=mode,
                                 snapshots=with_snapshots, progress=updates.append)
    assert done.metadata["status"] == "Success"
    assert sha256_in(apis[target], name) == digest
    assert snapshots(apis[target], name) == (["snap0"] if with_snapshots else [])
    assert sha256_in(apis[source], name) == digest and snapshots(apis[source], name) == ["snap0"]
    # A copy gets its own identity (volatile keys are not copied).
    assert apis[target].get(f"instances/{name}").metadata["config"]["volatile.uuid"] != \
        apis[source].get(f"instances/{name}").metadata["config"]["volatile.uuid"]
    assert updates, "no progress was reported"
    if mode == "relay":  # apitx's own count of what it carried: the data at least
        assert max(u.bytes or 0 for u in updates if u.stage == "relay") > 2 << 20


def test_copy_instance_without_snapshots_and_into_another_pool(apis, made, tmp_path):
    name = made.name("lxd", "lxd2")
    digest = workload(apis["lxd"], name, tmp_path, megabytes=1)
    migrate.copy_instance(apis["lxd"], name, apis["lxd2"], snapshots=False, pool=SMALL_POOL,
                          mode="relay")
    assert snapshots(apis["lxd2"], name) == []
    copy = apis["lxd2"].get(f"instances/{name}").metadata
    assert copy["expanded_devices"]["root"]["pool"] == SMALL_POOL
    assert sha256_in(apis["lxd2"], name) == digest


def test_copy_of_a_running_container_is_made_as_it_is_on_disk(apis, made, tmp_path):
    name = made.name("incus", "incus2")
    digest = workload(apis["incus"], name, tmp_path, megabytes=1, snapshot=False)
    apis["incus"].put(f"instances/{name}/state", json={"action": "start"}).wait(60)
    migrate.copy_instance(apis["incus"], name, apis["incus2"], mode="push")
    assert apis["incus2"].get(f"instances/{name}").metadata["status"] == "Stopped"
    assert sha256_in(apis["incus2"], name) == digest
    assert apis["incus"].get(f"instances/{name}").metadata["status"] == "Running"


def test_a_copy_on_one_server_is_a_local_copy(apis, made, tmp_path):
    name = made.name("lxd")
    copy = made.name("lxd")
    digest = workload(apis["lxd"], name, tmp_path, megabytes=1)
    migrate.copy_instance(apis["lxd"], name, apis["lxd"], new_name=copy)
    assert sha256_in(apis["lxd"], copy) == digest and snapshots(apis["lxd"], copy) == ["snap0"]
    with pytest.raises(apitx.RequestError, match="give new_name= for the copy; nothing was sent"):
        migrate.copy_instance(apis["lxd"], name, apis["lxd"])


# -- moves ------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_move_instance_between_servers(apis, made, tmp_path, mode):
    name = made.name("lxd", "lxd2")
    digest = workload(apis["lxd"], name, tmp_path, megabytes=1)
    identity = apis["lxd"].get(f"instances/{name}").metadata["config"]["volatile.uuid"]
    migrate.move_instance(apis["lxd"], name, apis["lxd2"], mode=mode)
    assert absent(apis["lxd"], f"instances/{name}")
    assert sha256_in(apis["lxd2"], name) == digest and snapshots(apis["lxd2"], name) == ["snap0"]
    # A move keeps the instance's identity (its volatile keys), as lxc move does.
    assert apis["lxd2"].get(f"instances/{name}").metadata["config"]["volatile.uuid"] == identity


def test_move_across_families_keeps_the_source_until_the_copy_is_there(apis, made, tmp_path):
    name = made.name("lxd", "incus2")
    digest = workload(apis["lxd"], name, tmp_path, megabytes=1)
    migrate.move_instance(apis["lxd"], name, apis["incus2"], mode="pull")
    assert absent(apis["lxd"], f"instances/{name}")
    assert sha256_in(apis["incus2"], name) == digest
    assert snapshots(apis["incus2"], name) == ["snap0"]


def test_moving_a_running_instance_to_another_server_is_refused_up_front(apis, made, tmp_path):
    name = made.name("lxd", "lxd2")
    workload(apis["lxd"], name, tmp_path, megabytes=0.1, snapshot=False)
    apis["lxd"].put(f"instances/{name}/state", json={"action": "start"}).wait(60)
    with pytest.raises(apitx.RequestError, match="is running: stop it before moving it"):
        migrate.move_instance(apis["lxd"], name, apis["lxd2"])
    assert apis["lxd"].get(f"instances/{name}").metadata["status"] == "Running"
    assert absent(apis["lxd2"], f"instances/{name}")


def test_a_move_on_one_server_renames(apis, made):
    # The data is written from inside the instance, not pushed through the
    # file API: on Incus 6.0.4 a push to a stopped instance, then a rename,
    # makes the next start or file read wait 15 s (docs/servers-findings.md).
    api, name, renamed = apis["incus"], made.name("incus"), made.name("incus")
    api.post("instances", json={"name": name, "source": {"type": "image", "alias": IMAGE}}
             ).wait(120)
    digest = sha256_inside(api, name, write=100_000)
    api.put(f"instances/{name}/state", json={"action": "stop", "force": True}).wait(60)
    migrate.move_instance(api, name, new_name=renamed)
    assert absent(api, f"instances/{name}")
    assert sha256_inside(api, renamed) == digest


# -- what the servers cannot do: refused before anything is sent ---------------------------

@pytest.mark.parametrize("mode", MODES)
def test_incus_snapshots_into_lxd_are_refused_up_front(apis, made, tmp_path, mode):
    name = made.name("incus", "lxd2")
    workload(apis["incus"], name, tmp_path, megabytes=0.1)
    with pytest.raises(apitx.RequestError, match="volatile.uuid.generation.*snapshots=False"):
        migrate.copy_instance(apis["incus"], name, apis["lxd2"], mode=mode)
    assert absent(apis["lxd2"], f"instances/{name}")
    assert running_migrations(apis["incus"], name) == []


def test_a_mode_needing_the_network_is_refused_when_a_server_is_not_on_it(apis, made, tmp_path):
    name = made.name("lxd2", "lxd")
    other = made.name("lxd", "lxd2")
    workload(apis["lxd2"], name, tmp_path, megabytes=0.1, snapshot=False)
    workload(apis["lxd"], other, tmp_path, megabytes=0.1, snapshot=False)
    apis["lxd2"].patch("", json={"config": {"core.https_address": ""}})
    try:
        with pytest.raises(apitx.RequestError, match="mode='pull' needs the source .* on the "
                                                     "network"):
            migrate.copy_instance(apis["lxd2"], name, apis["lxd"], mode="pull")
        with pytest.raises(apitx.RequestError, match="mode='push' needs the target"):
            migrate.copy_instance(apis["lxd"], other, apis["lxd2"], mode="push")
        # Relay needs neither daemon to reach the other.
        migrate.copy_instance(apis["lxd2"], name, apis["lxd"], mode="relay")
    finally:
        apis["lxd2"].patch("", json={"config": {"core.https_address": "127.0.2.1:8443"}})
    assert snapshots(apis["lxd"], name) == []


@pytest.mark.parametrize("kwargs, error, words", [
    ({"mode": "rsync"}, apitx.RequestError, "mode='rsync': give one of 'pull', 'push', 'relay'"),
    ({"new_name": "a/b"}, apitx.RequestError, "new_name='a/b': give a name, without '/'"),
    ({"new_name": 5}, apitx.RequestTypeError, "new_name=5: give a name .a str., not int"),
    ({"timeout": "9"}, apitx.RequestTypeError, "timeout='9': give seconds"),
])
def test_caller_mistakes_are_refused_before_anything_is_sent(apis, kwargs, error, words):
    with pytest.raises(error, match=words) as caught:
        migrate.copy_instance(apis["lxd"], "c1", apis["lxd2"], **kwargs)
    assert "nothing was sent" in str(caught.value)


# -- failures on the way: the side named, nothing half-made left ---------------------------

@pytest.mark.parametrize("mode", MODES)
def test_a_name_taken_on_the_target_stops_the_copy(apis, made, tmp_path, mode):
    name = made.name("lxd", "lxd2")
    workload(apis["lxd"], name, tmp_path, megabytes=0.1, snapshot=False)
    apis["lxd2"].post("instances", json={"name": name, "config": {"user.mine": "keep"},
                                         "source": {"type": "none"}}).wait(60)
    with pytest.raises(apitx.MigrationError, match="already has an instance") as caught:
        migrate.copy_instance(apis["lxd"], name, apis["lxd2"], mode=mode)
    assert caught.value.side == "target"
    assert apis["lxd2"].get(f"instances/{name}").metadata["config"]["user.mine"] == "keep"
    assert running_migrations(apis["lxd"], name) == []


@pytest.mark.parametrize("mode", MODES)
def test_a_name_taken_meanwhile_is_the_targets_refusal_and_the_source_is_cancelled(
        apis, made, tmp_path, mode):
    """The server's own refusal, for a name taken after apitx looked (the
    engine is run without the up-front check): the target is blamed, its
    instance kept, the source's waiting operation cancelled."""
    name = made.name("incus", "incus2")
    workload(apis["incus"], name, tmp_path, megabytes=0.1, snapshot=False)
    apis["incus2"].post("instances", json={"name": name, "config": {"user.mine": "keep"},
                                           "source": {"type": "none"}}).wait(60)
    source, target = Peer.read(apis["incus"], "source"), Peer.read(apis["incus2"], "target")
    instance = apis["incus"].get(f"instances/{name}").metadata
    job = Job(what=f"instance {name}", source_url=f"instances/{name}",
              source_body={"migration": True, "live": False}, target_url="instances",
              target_body={"name": name, "architecture": instance["architecture"],
                           "type": "container", "source": {}})
    with pytest.raises(apitx.MigrationError, match="it refused to create the copy. It said: "
                                                   ".*UNIQUE constraint failed") as caught:
        run_migration(job, source, target, mode, progress=None, timeout=60,
                      remove=lambda: remove_created(apis["incus2"], f"instances/{name}", name))
    assert caught.value.side == "target"
    assert apis["incus2"].get(f"instances/{name}").metadata["config"]["user.mine"] == "keep"
    assert running_migrations(apis["incus"], name) == []


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("source, target", [("lxd", "lxd2"), ("incus", "incus2")])
def test_a_full_target_pool_is_named_and_nothing_is_left(apis, made, tmp_path, source, target,
                                                         mode):
    name = made.name(source, target)
    workload(apis[source], name, tmp_path, megabytes=32, snapshot=False)
    with pytest.raises(apitx.MigrationError, match=f"failed on the target .*pool {SMALL_POOL}"
                       ) as caught:
        migrate.copy_instance(apis[source], name, apis[target], mode=mode, pool=SMALL_POOL)
    assert caught.value.side == "target" and caught.value.left_behind is None
    assert "nothing is left on the target" in str(caught.value)
    assert absent(apis[target], f"instances/{name}")
    volumes = apis[target].get(f"storage-pools/{SMALL_POOL}/volumes").metadata
    assert not [url for url in volumes if name in url]
    assert running_migrations(apis[source], name) == []


def test_an_unreachable_target_stops_the_copy_before_anything_starts(apis, made, tmp_path):
    name = made.name("lxd")
    workload(apis["lxd"], name, tmp_path, megabytes=0.1, snapshot=False)
    nowhere = apitx.API.factory("https://127.0.2.9:8443", cert=CLIENT_CERT, verify=False,
                                timeout=apitx.Timeout(connect=2, read=10))
    with pytest.raises(apitx.MigrationError, match="the target at https://127.0.2.9:8443 "
                                                   "failed.*nothing was started") as caught:
        migrate.copy_instance(apis["lxd"], name, nowhere, mode="relay")
    assert caught.value.side == "target"
    assert isinstance(caught.value.__cause__, apitx.APIConnectionError)
    assert running_migrations(apis["lxd"], name) == []


@pytest.mark.parametrize("mode", MODES)
def test_a_target_certificate_that_does_not_match_stops_the_copy(apis, made, tmp_path, mode):
    name = made.name("lxd", "lxd2")
    workload(apis["lxd"], name, tmp_path, megabytes=0.1, snapshot=False)
    # lxd2's address, pinned to the sandbox LXD's certificate.
    impostor = apitx.API.factory(HTTPS["lxd2"], cert=CLIENT_CERT, verify=SERVER_CERTS["lxd"])
    with pytest.raises(apitx.MigrationError, match="presented certificate") as caught:
        migrate.copy_instance(apis["lxd"], name, impostor, mode=mode)
    assert caught.value.side == "target"
    assert isinstance(caught.value.__cause__, apitx.CertificateMismatch)
    assert absent(apis["lxd2"], f"instances/{name}")
    assert running_migrations(apis["lxd"], name) == []


@pytest.mark.parametrize("source, target", [("lxd", "lxd2"), ("incus", "incus2")])
def test_deleting_the_source_mid_copy_never_passes_for_a_copy(apis, made, tmp_path, source,
                                                              target):
    """The source is deleted as soon as the migration runs. Incus refuses
    ("busy") and the copy completes, whole. LXD lets the delete through
    unless the migration has locked the instance already (then it waits):
    either the copy completes whole, or it fails naming the source and its
    deletion, and nothing is left on the target. Never a broken copy."""
    name = made.name(source, target)
    digest = workload(apis[source], name, tmp_path, megabytes=20, snapshot=False)
    deletes: List[threading.Thread] = []
    outcome: List[Any] = []

    def delete_once(update: migrate.TransferProgress) -> None:
        if not deletes:  # the migration runs: delete its source now
            deletes.append(threading.Thread(target=lambda: outcome.append(
                apis[source].delete(f"instances/{name}", validate=False))))
            deletes[0].start()

    try:
        migrate.copy_instance(apis[source], name, apis[target], mode="relay",
                              progress=delete_once)
    except apitx.MigrationError as failed:
        assert source == "lxd", str(failed)
        assert failed.side == "source" and "was deleted on the source during the copy" in \
            str(failed)
        assert failed.left_behind is None and absent(apis[target], f"instances/{name}")
        copied = False
    else:
        assert sha256_in(apis[target], name) == digest
        copied = True
    deletes[0].join(120)
    answer = outcome[0]
    if source == "lxd":
        answer.wait(60)
        assert absent(apis[source], f"instances/{name}")
    else:
        assert copied
        with pytest.raises(apitx.APIException, match="busy running a \"migrate\" operation"):
            answer.wait(60)


@pytest.mark.parametrize("back", ["later", "at_once"])
def test_the_source_daemon_killed_mid_copy_is_named_and_the_target_cleaned(
        apis, made, tmp_path, back):
    """Whether the source's daemon still does not answer when apitx looks,
    or is back already and has forgotten its operation."""
    name = made.name("lxd2", "lxd")
    workload(apis["lxd2"], name, tmp_path, megabytes=60, snapshot=False)
    failed = copied_while_killed(apis["lxd2"], name, apis["lxd"],
                                 KillMidCopy(lambda: kill("lxd2"), pair_up, back))
    assert failed.side == "source", str(failed)
    assert ("stopped answering" if back == "later" else "its daemon restarted") in str(failed)
    assert absent(apis["lxd"], f"instances/{name}")
    with apitx.API.factory(apis["lxd2"].endpoint) as again:
        assert again.get(f"instances/{name}").metadata["status"] == "Stopped"


def test_the_target_daemon_killed_mid_copy_is_named_and_its_partial_copy_removed(
        apis, made, tmp_path):
    """A target that dies midway has the partial instance again once it is
    back (measured): apitx waits for it and removes it."""
    name = made.name("lxd", "lxd2")
    workload(apis["lxd"], name, tmp_path, megabytes=60, snapshot=False)
    failed = copied_while_killed(apis["lxd"], name, apis["lxd2"],
                                 KillMidCopy(lambda: kill("lxd2"), pair_up))
    assert failed.side == "target", str(failed)
    assert failed.left_behind is None, str(failed)
    with apitx.API.factory(apis["lxd2"].endpoint) as again:
        assert absent(again, f"instances/{name}")
    assert running_migrations(apis["lxd"], name) == []


def test_the_target_killed_mid_pull_without_progress_is_named_and_cleaned(
        apis, made, tmp_path):
    """Without progress= the target's operation is long-polled, not followed
    by events: a target dying midway still ends the wait, is named, and its
    partial copy is removed once it is back."""
    name = made.name("lxd", "lxd2")
    workload(apis["lxd"], name, tmp_path, megabytes=120, snapshot=False)
    moving = threading.Event()

    def kill_once_moving() -> None:
        # The source's operation holds its websocket secrets from the start,
        # and fs_progress once data flows (a second in).
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not moving.is_set():
            if any("fs_progress" in (op.get("metadata") or {})
                   for op in running_operations(apis["lxd"], name)):
                moving.set()
                kill("lxd2")
                pair_up()
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=kill_once_moving)
    watcher.start()
    try:
        with pytest.raises(apitx.MigrationError) as caught:
            migrate.copy_instance(apis["lxd"], name, apis["lxd2"], mode="pull")
    finally:
        moving.set()  # stops a watcher that never saw it move
        watcher.join(300)
    failed = caught.value
    assert failed.side == "target", str(failed)
    assert failed.left_behind is None, str(failed)
    with apitx.API.factory(apis["lxd2"].endpoint) as again:
        assert absent(again, f"instances/{name}")
    assert running_migrations(apis["lxd"], name) == []


@contextlib.contextmanager
def create_answer_lost(daemon_socket: str, path: str) -> Iterator[threading.Event]:
    """A Unix socket at ``path`` passing everything to and from
    ``daemon_socket``, but for the answer to the first ``POST
    /1.0/instances``: that connection is closed instead, as when a daemon
    dies while answering. The daemon made what it was asked; the client
    never hears of it. Yields an event set once an answer was dropped."""
    dropped = threading.Event()
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen(8)

    def carry(client: socket.socket) -> None:
        daemon = socket.socket(socket.AF_UNIX)
        daemon.connect(daemon_socket)
        creating = threading.Event()

        def requests_() -> None:
            with contextlib.suppress(OSError):
                while True:
                    data = client.recv(1 << 16)
                    if not data:
                        break
                    if not dropped.is_set() and b"POST /1.0/instances " in data:
                        creating.set()  # before the daemon can answer it
                    daemon.sendall(data)
            with contextlib.suppress(OSError):
                daemon.shutdown(socket.SHUT_WR)

        threading.Thread(target=requests_, daemon=True).start()
        with contextlib.suppress(OSError):
            while True:
                data = daemon.recv(1 << 16)
                if not data:
                    break
                if creating.is_set():
                    dropped.set()
                    break
                client.sendall(data)
        for end in (client, daemon):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def accept() -> None:
        with contextlib.suppress(OSError):  # the listener closed: the test is over
            while True:
                threading.Thread(target=carry, args=(listener.accept()[0],),
                                 daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield dropped
    finally:
        listener.shutdown(socket.SHUT_RDWR)
        listener.close()


def test_a_target_that_made_the_copy_but_lost_its_answer_is_cleaned(apis, made, tmp_path):
    """The target's answer to the create request never comes back: it may
    have made the instance all the same (measured: lxd2 killed while
    answering was back with it), so apitx looks, and removes it."""
    name = made.name("lxd", "lxd2")
    workload(apis["lxd"], name, tmp_path, megabytes=1, snapshot=False)
    proxy = str(tmp_path / "lxd2.socket")
    with create_answer_lost(apis["lxd2"].endpoint.socket_path, proxy) as dropped, \
            apitx.API.factory(proxy) as target:
        with pytest.raises(apitx.MigrationError) as caught:
            migrate.copy_instance(apis["lxd"], name, target, mode="pull")
    assert dropped.is_set()
    failed = caught.value
    assert failed.side == "target", str(failed)
    assert failed.left_behind is None and "nothing is left on the target" in str(failed), \
        str(failed)
    assert "refused" not in str(failed)  # it did not refuse: its answer was lost
    assert absent(apis["lxd2"], f"instances/{name}")
    assert running_migrations(apis["lxd"], name) == []


# -- the relay's trace: counted, not dumped --------------------------------------------------

def test_a_traced_relay_shows_both_servers_requests_and_counts_the_websockets(
        apis, made, tmp_path, caplog):
    name = made.name("lxd", "lxd2")
    workload(apis["lxd"], name, tmp_path, megabytes=1, snapshot=False)
    source = apitx.API.factory(apis["lxd"].endpoint, debug=True)
    target = apitx.API.factory(apis["lxd2"].endpoint, debug=True)
    with caplog.at_level(logging.DEBUG, logger="apitx"):
        migrate.copy_instance(source, name, target, mode="relay")
    text = caplog.text
    assert f"unix:{apis['lxd'].endpoint.socket_path} POST /1.0/instances/{name} " in text
    assert f"unix:{apis['lxd2'].endpoint.socket_path} POST /1.0/instances " in text
    relayed = [r.getMessage() for r in caplog.records if "relayed websocket fs" in r.getMessage()]
    assert len(relayed) == 1 and "source→target" in relayed[0]
    counted = int(relayed[0].split("source→target ")[1].split(" frames, ")[1].split(" bytes")[0])
    assert counted > 1 << 20
    assert "<binary" not in text  # frames are not traced one by one
    assert "secret=" not in text.replace("secret=<redacted>", "")


def test_only_a_copy_reporting_progress_opens_an_event_stream(apis, made, tmp_path, caplog):
    # Without progress= the target's operation is long-polled: an event
    # stream would cost a TLS connection and websocket-client's import just
    # as the servers start, for progress nobody reads.
    name = made.name("lxd", "lxd2")
    workload(apis["lxd"], name, tmp_path, megabytes=1, snapshot=False)
    source = apitx.API.factory(apis["lxd"].endpoint, debug=True)
    target = apitx.API.factory(apis["lxd2"].endpoint, debug=True)
    streamed = {}
    for updates in (None, []):
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="apitx"):
            migrate.copy_instance(source, name, target, mode="push",
                                  progress=None if updates is None else updates.append)
        streamed[updates is not None] = "/1.0/events" in caplog.text
        remove_instance(apis["lxd2"], name)
    assert streamed == {False: False, True: True}


# -- within, into and out of the cluster -----------------------------------------------------

@pytest.mark.cluster
def test_into_across_and_out_of_the_cluster(apis, made, tmp_path):
    name = made.name("lxd", "lxd2")
    digest = workload(apis["lxd"], name, tmp_path, megabytes=1)
    with member_api("m1") as cluster:
        try:
            migrate.copy_instance(apis["lxd"], name, cluster, target_member="m2", mode="relay")
            assert cluster.get(f"instances/{name}").metadata["location"] == "m2"
            migrate.move_instance(cluster, name, target_member="m3")
            assert cluster.get(f"instances/{name}").metadata["location"] == "m3"
            assert snapshots(cluster, name) == ["snap0"]
            migrate.copy_instance(cluster, name, apis["lxd2"], mode="pull")
            assert sha256_in(apis["lxd2"], name) == digest
            with pytest.raises(apitx.RequestError, match="is not a cluster"):
                migrate.move_instance(apis["lxd"], name, target_member="m1")
        finally:
            remove_instance(cluster, name)


@pytest.mark.cluster
def test_a_cluster_member_killed_mid_copy_is_named_and_the_partial_copy_removed(
        apis, made, tmp_path):
    """The member receiving the copy dies; the member apitx talks to says so
    (HTTP 500 for the operation): the target is named, and once the member
    is back (scripts/lxd-cluster up) the partial instance is removed."""
    name = made.name("lxd")
    workload(apis["lxd"], name, tmp_path, megabytes=60, snapshot=False)
    with member_api("m1") as cluster:
        try:
            failed = copied_while_killed(apis["lxd"], name, cluster,
                                         KillMidCopy(lambda: kill_member("m3"), restore_cluster),
                                         target_member="m3")
            assert failed.side == "target", str(failed)
            assert failed.left_behind is None, str(failed)
            assert absent(cluster, f"instances/{name}")
        finally:
            remove_instance(cluster, name)
    assert running_migrations(apis["lxd"], name) == []


# -- images ------------------------------------------------------------------------------------

def published(api: apitx.API, made: Made, server: str, tmp_path: Any) -> Tuple[str, str]:
    """A fresh image on ``server`` (published from a container), with an alias."""
    name = made.name(server)
    workload(api, name, tmp_path, megabytes=0.1, snapshot=False)
    alias = made.name(server, kind="image")
    done = api.post("images", json={"source": {"type": "instance", "name": name},
                                    "aliases": [{"name": alias, "description": "ours"}]}).wait(120)
    return alias, done.metadata["metadata"]["fingerprint"]


def ids(combinations: List[Tuple[str, ...]]) -> List[str]:
    return ["-".join(combination) for combination in combinations]


IMAGE_COPIES = [("lxd", "lxd2", m) for m in MODES] + [("incus", "incus2", m) for m in MODES] + [
    ("lxd", "incus2", "pull"), ("lxd", "incus2", "relay"), ("incus", "lxd2", "pull"),
    ("incus", "lxd2", "relay")]


@pytest.mark.parametrize("source, target, mode", IMAGE_COPIES, ids=ids(IMAGE_COPIES))
def test_copy_image_keeps_fingerprint_and_aliases(apis, made, tmp_path, source, target, mode):
    alias, fingerprint = published(apis[source], made, source, tmp_path)
    made.things.append(("image", target, alias))
    done = migrate.copy_image(apis[source], alias, apis[target], mode=mode)
    assert done.metadata["fingerprint"] == fingerprint
    assert apis[target].get(f"images/aliases/{alias}").metadata == {
        "name": alias, "description": "ours", "target": fingerprint, "type": "container"}


@pytest.mark.parametrize("source, target", [("lxd", "incus2"), ("incus", "lxd2")])
def test_image_push_across_families_is_refused_up_front(apis, made, tmp_path, source, target):
    alias, fingerprint = published(apis[source], made, source, tmp_path)
    with pytest.raises(apitx.RequestError, match="one-time secret.*'not authorized'; use pull "
                                                 "or relay; nothing was sent"):
        migrate.copy_image(apis[source], fingerprint, apis[target], mode="push")
    assert absent(apis[target], f"images/{fingerprint}")


def test_an_alias_the_target_gives_another_image_stops_the_image_copy(apis, made, tmp_path):
    alias, fingerprint = published(apis["lxd"], made, "lxd", tmp_path)
    made.things.append(("image", "lxd2", alias))
    theirs = apis["lxd2"].get(f"images/aliases/{IMAGE}").metadata["target"]
    apis["lxd2"].post("images/aliases", json={"name": alias, "target": theirs})
    try:
        with pytest.raises(apitx.MigrationError, match="already has alias") as caught:
            migrate.copy_image(apis["lxd"], alias, apis["lxd2"], mode="relay")
        assert caught.value.side == "target"
        assert absent(apis["lxd2"], f"images/{fingerprint}")
        # Without its aliases, it goes.
        migrate.copy_image(apis["lxd"], alias, apis["lxd2"], aliases=False, mode="relay")
        assert apis["lxd2"].get(f"images/aliases/{alias}").metadata["target"] == theirs
    finally:
        apis["lxd2"].delete(f"images/aliases/{alias}", validate=False)
        apis["lxd2"].delete(f"images/{fingerprint}", validate=False)


# -- custom volumes ---------------------------------------------------------------------------

def volume_with_data(api: apitx.API, made: Made, server: str, tmp_path: Any) -> Tuple[str, str]:
    """A custom volume holding a file of random bytes (written through a
    container that mounts it), with a snapshot; returns (name, sha256)."""
    volume = made.name(server, kind="volume")
    api.post("storage-pools/default/volumes/custom", json={"name": volume}).wait(60)
    holder = made.name(server)
    digest = workload(api, holder, tmp_path, megabytes=1, snapshot=False)
    api.patch(f"instances/{holder}", json={"devices": {"vol": {
        "type": "disk", "pool": "default", "source": volume, "path": "/mnt"}}})
    api.put(f"instances/{holder}/state", json={"action": "start"}).wait(60)
    api.exec(holder, ["cp", DATA, "/mnt/data.bin"]).check()
    remove_instance(api, holder)
    api.post(f"storage-pools/default/volumes/custom/{volume}/snapshots",
             json={"name": "vs0"}).wait(60)
    return volume, digest


def volume_digest(api: apitx.API, made: Made, server: str, volume: str) -> str:
    reader = made.name(server)
    api.post("instances", json={"name": reader, "source": {"type": "image", "alias": IMAGE},
                                "devices": {"vol": {"type": "disk", "pool": "default",
                                                    "source": volume, "path": "/mnt"}}}
             ).wait(120)
    api.put(f"instances/{reader}/state", json={"action": "start"}).wait(60)
    return sha256_in(api, reader, "/mnt/data.bin")


VOLUME_COPIES = [("lxd", "lxd2", m) for m in MODES] + [("incus", "incus2", "relay"),
                                                       ("incus", "lxd2", "pull")]


@pytest.mark.parametrize("source, target, mode", VOLUME_COPIES, ids=ids(VOLUME_COPIES))
def test_copy_volume_with_its_data_and_snapshot(apis, made, tmp_path, source, target, mode):
    volume, digest = volume_with_data(apis[source], made, source, tmp_path)
    made.things.append(("volume", target, volume))
    migrate.copy_volume(apis[source], "default", volume, apis[target], mode=mode)
    listed = apis[target].get(f"storage-pools/default/volumes/custom/{volume}/snapshots").metadata
    assert [url.rsplit("/", 1)[-1] for url in listed] == ["vs0"]
    assert volume_digest(apis[target], made, target, volume) == digest


def test_a_volume_from_lxd_to_incus_is_refused_up_front(apis, made):
    volume = made.name("lxd", kind="volume")
    apis["lxd"].post("storage-pools/default/volumes/custom", json={"name": volume}).wait(60)
    with pytest.raises(apitx.RequestError, match="Incus crashes receiving a custom volume"):
        migrate.copy_volume(apis["lxd"], "default", volume, apis["incus2"], mode="relay")
    assert absent(apis["incus2"], f"storage-pools/default/volumes/custom/{volume}")


# -- backups ----------------------------------------------------------------------------------

BACKUPS = [("lxd2", "lxd"), ("incus2", "incus"), ("lxd2", "incus2")]


@pytest.mark.parametrize("source, target", BACKUPS, ids=ids(BACKUPS))
def test_export_is_byte_exact_and_imports_with_its_data(apis, made, tmp_path, source, target):
    """The exported file is the server's backup file, byte for byte (read on
    the server's disk while the download runs); imported elsewhere it holds
    the same data and snapshot."""
    name = made.name(source)
    copy = made.name(target)
    digest = workload(apis[source], name, tmp_path, megabytes=4)
    folder = f"{ROOT}/{source}/backups/instances/{name}"  # where the server keeps its backup
    on_disk: List[str] = []

    def read_servers_file(update: migrate.TransferProgress) -> None:
        if update.stage == "download" and not on_disk:
            (backup,) = os.listdir(folder)
            on_disk.append(file_fingerprint(os.path.join(folder, backup)))

    path = tmp_path / "backup.tar.gz"
    updates: List[migrate.TransferProgress] = []
    size = migrate.export_instance(apis[source], name, path, progress=lambda u: (
        updates.append(u), read_servers_file(u)))
    assert size == os.path.getsize(path) == updates[-1].bytes == updates[-1].total
    assert file_fingerprint(str(path)) == on_disk[0]
    folder = f"{ROOT}/{source}/backups/instances/{name}"
    assert not os.path.exists(folder) or not os.listdir(folder)  # the backup is deleted after
    uploads: List[migrate.TransferProgress] = []
    migrate.import_instance(apis[target], path, name=copy, progress=uploads.append)
    assert max(u.bytes or 0 for u in uploads if u.stage == "upload") == size
    assert sha256_in(apis[target], copy) == digest and snapshots(apis[target], copy) == ["snap0"]


def test_export_to_a_file_object_and_import_from_one(apis, made, tmp_path):
    name = made.name("lxd")
    copy = made.name("lxd2")
    digest = workload(apis["lxd"], name, tmp_path, megabytes=1, snapshot=False)
    with open(tmp_path / "b.tar.gz", "w+b") as stream:
        written = migrate.export_instance(apis["lxd"], name, stream, instance_only=True)
        assert stream.tell() == written
        stream.seek(0)
        migrate.import_instance(apis["lxd2"], stream, name=copy)
    assert sha256_in(apis["lxd2"], copy) == digest


@pytest.mark.parametrize("kind", ["memory", "pipe"])
def test_import_from_a_file_object_without_a_descriptor_or_a_length(apis, made, tmp_path, kind):
    """An io.BytesIO has no descriptor, a pipe no length: both used to be
    sent as "Content-Length: 0" (LXD: "EOF"). The first is measured by
    seeking, the second sent chunked; both arrive whole."""
    name = made.name("lxd")
    copy = made.name("lxd")
    digest = workload(apis["lxd"], name, tmp_path, megabytes=1, snapshot=False)
    data = io.BytesIO()
    migrate.export_instance(apis["lxd"], name, data, instance_only=True)
    data.seek(0)
    if kind == "memory":
        migrate.import_instance(apis["lxd"], data, name=copy)
    else:
        read_end, write_end = os.pipe()

        def feed() -> None:
            with open(write_end, "wb") as pipe:
                pipe.write(data.getvalue())

        feeder = threading.Thread(target=feed)
        feeder.start()
        with open(read_end, "rb") as stream:
            migrate.import_instance(apis["lxd"], stream, name=copy)
        feeder.join()
    assert sha256_in(apis["lxd"], copy) == digest


def test_an_export_to_a_path_that_cannot_be_written_makes_no_backup(apis, made, tmp_path):
    name = made.name("lxd2")
    workload(apis["lxd2"], name, tmp_path, megabytes=0.1, snapshot=False)
    with pytest.raises(apitx.LocalFileError, match="cannot write .*missing/b.tar.gz"):
        migrate.export_instance(apis["lxd2"], name, tmp_path / "missing" / "b.tar.gz")
    assert apis["lxd2"].get(f"instances/{name}/backups").metadata == []


def test_an_incus_backup_into_lxd_is_refused_up_front(apis, made, tmp_path):
    name = made.name("incus2", "lxd")
    workload(apis["incus2"], name, tmp_path, megabytes=0.1)
    path = tmp_path / "incus.tar.gz"
    migrate.export_instance(apis["incus2"], name, path)
    with pytest.raises(apitx.RequestError, match="comes from Incus .*volatile.uuid.generation"):
        migrate.import_instance(apis["lxd"], path)
    assert absent(apis["lxd"], f"instances/{name}")


def test_importing_under_a_name_taken_is_refused_up_front(apis, made, tmp_path):
    name = made.name("lxd2")
    workload(apis["lxd2"], name, tmp_path, megabytes=0.1, snapshot=False)
    path = tmp_path / "b.tar.gz"
    migrate.export_instance(apis["lxd2"], name, path)
    with pytest.raises(apitx.MigrationError, match=f"already has an instance {name}") as caught:
        migrate.import_instance(apis["lxd2"], path)  # the backup's own name: read from it
    assert caught.value.side == "target"


def test_a_backup_names_itself_in_its_first_member(apis, made, tmp_path):
    """What import_instance relies on to check before sending."""
    name = made.name("incus")
    workload(apis["incus"], name, tmp_path, megabytes=0.1, snapshot=False)
    data = io.BytesIO()
    migrate.export_instance(apis["incus"], name, data)
    data.seek(0)
    with tarfile.open(fileobj=data, mode="r|*") as tar:
        assert tar.next().name == "backup/index.yaml"

