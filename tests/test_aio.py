"""AsyncAPI on the real servers, and what only asyncio has: cancellation and concurrency.

The duties both clients share run for both through the ``client`` fixture
elsewhere; here: the async client's own ways (awaiting, async iteration,
coroutine callbacks), its transport's faults (the hostile server), the
connection cap under 1,000 concurrent requests, and tasks cancelled in the
middle of a request, a wait, or an event stream.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import uuid
from typing import Any, Awaitable, Callable, List

import pytest

import apitx
from hostile import running_server
from hostile_ws import running_ws_server
from sandbox import SandboxServer, instance_config

live = pytest.mark.live


def run(make: Callable[[], Awaitable[Any]]) -> Any:
    """Run a coroutine in a fresh event loop, as an application would."""
    return asyncio.run(make())  # type: ignore[arg-type]


# -- the contract, awaited ----------------------------------------------------------

@live
def test_requests_results_and_errors_as_the_sync_client_gives_them(server: SandboxServer) -> None:
    async def check() -> None:
        async with apitx.AsyncAPI.factory(server.socket) as api:
            root = await api.get("")
            assert root.metadata["api_version"] == "1.0" and root.ok
            assert (await api.server).name == server.name
            await api.require("container_exec_recording")
            with pytest.raises(apitx.MissingExtension):
                await api.require("no_such_extension_ever")
            with pytest.raises(apitx.APINotFoundException) as info:
                await api.get("instances/apitx-missing-x")
            with apitx.API.factory(server.socket) as sync, \
                    pytest.raises(apitx.APINotFoundException) as sync_info:
                sync.get("instances/apitx-missing-x")
            assert str(info.value) == str(sync_info.value)  # the same words
            answer = await api.instances.get(params={"recursion": 0})
            assert isinstance(answer.metadata, list)
            assert (await api.get("instances/apitx-missing-x", validate=False)).status_code == 404

    run(check)


@live
def test_create_wait_with_progress_exec_wait_all_and_events(server: SandboxServer) -> None:
    async def check() -> None:
        async with apitx.AsyncAPI.factory(server.socket) as api:
            name = f"apitx-{uuid.uuid4().hex[:10]}"
            updates: List[apitx.AsyncAPIResult] = []

            async def progress(answer: apitx.AsyncAPIResult) -> None:
                updates.append(answer)

            created = await api.post("instances", json=instance_config(name))
            done = await created.wait(timeout=120, progress=progress)
            try:
                assert done.metadata["status"] == "Success" and updates
                assert all(each.metadata["id"] == created.metadata["id"] for each in updates)
                await (await api.put(f"instances/{name}/state", json={"action": "start"})).wait(60)
                async with await api.events(types=["lifecycle"], timeout=30) as stream:
                    started = [await api.post(f"instances/{name}/exec", json={
                        "command": ["sh", "-c", f"exit {code}"], "record-output": False,
                        "wait-for-websocket": False, "interactive": False})
                        for code in (0, 3, 0)]
                    ended = await api.wait_all(started, timeout=60)
                    assert [each.metadata["metadata"]["return"] for each in ended] == [0, 3, 0]
                    await (await api.put(f"instances/{name}/state",
                                         json={"action": "stop", "force": True})).wait(60)
                    actions = []
                    async for event in stream:
                        actions.append(event.metadata.get("action"))
                        if event.metadata.get("action") == "instance-stopped":
                            break
                    assert "instance-stopped" in actions
            finally:
                with apitx.API.factory(server.socket) as sync:
                    from sandbox import remove_instance
                    remove_instance(sync, name)

    run(check)


@live
def test_files_push_and_pull_streamed(server: SandboxServer, tmp_path: Any) -> None:
    async def check() -> None:
        async with apitx.AsyncAPI.factory(server.socket) as api:
            name = f"apitx-{uuid.uuid4().hex[:10]}"
            await (await api.post("instances", json=instance_config(name))).wait(120)
            try:
                files = api.files(name)
                data = os.urandom(3 * 1024 * 1024 + 7)
                source = tmp_path / "up.bin"
                source.write_bytes(data)
                await files.push("/root/up.bin", source, mode=0o600)

                async def pieces():  # an async iterable, streamed as it comes
                    for start in range(0, len(data), 100_000):
                        yield data[start:start + 100_000]

                await files.push("/root/again.bin", pieces())
                assert await files.pull("/root/again.bin", tmp_path / "down.bin") == len(data)
                assert hashlib.sha256((tmp_path / "down.bin").read_bytes()).digest() == \
                    hashlib.sha256(data).digest()
                assert await files.pull("/root/up.bin") == data
                await files.mkdir("/root/d", mode=0o700)
                assert "up.bin" in await files.listdir("/root")
                with pytest.raises(apitx.APINotFoundException, match="there is no /root/nope"):
                    await files.pull("/root/nope")
            finally:
                await (await api.delete(f"instances/{name}")).wait(60)

    run(check)


@live
def test_https_with_the_client_certificate_and_a_pin(server: SandboxServer) -> None:
    async def check() -> None:
        async with apitx.AsyncAPI.factory(server.https, **server.https_options) as api:
            assert (await api.get("")).metadata["auth"] == "trusted"
        wrong = "sha256:" + "0" * 64
        async with apitx.AsyncAPI.factory(server.https, cert=server.https_options["cert"],
                                          fingerprint=wrong) as api:
            with pytest.raises(apitx.CertificateMismatch) as info:
                await api.get("")
            assert info.value.expected == wrong and info.value.seen.startswith("sha256:")

    run(check)


# -- faults of the transport (the hostile server) ------------------------------------

@pytest.mark.parametrize("path, kind, words", [
    ("/garbage", apitx.APIConnectionError, "did not answer in HTTP"),
    ("/close", apitx.APIConnectionError, "closed the connection without an answer"),
    ("/truncated", apitx.APIConnectionError, "broke mid-answer"),
    ("/html-502", apitx.APIException, "502 Bad Gateway"),
    ("/not-json-declared-json", apitx.APIException, "declared JSON but"),
    ("/redirect-away", apitx.APIException, "redirects"),
])
def test_transport_faults_raise_what_the_sync_client_raises(path: str, kind: type,
                                                            words: str) -> None:
    with running_server() as hostile:
        async def check() -> BaseException:
            async with apitx.AsyncAPI.factory(hostile.server_address,
                                              timeout=apitx.Timeout(connect=2, read=2)) as api:
                with pytest.raises(kind) as info:
                    await api.get(path)
                return info.value

        error = run(check)
        assert words in str(error)
        with apitx.API.factory(hostile.server_address,
                               timeout=apitx.Timeout(connect=2, read=2)) as sync, \
                pytest.raises(kind) as sync_info:
            sync.get(path)
        assert type(error) is type(sync_info.value)


def test_an_oversized_answer_is_refused_at_the_cap() -> None:
    with running_server() as hostile:
        async def check() -> None:
            async with apitx.AsyncAPI.factory(hostile.server_address,
                                              max_answer_bytes=10_000) as api:
                with pytest.raises(apitx.ResponseTooLarge, match="10000 bytes"):
                    await api.get("/chunked-endless")
                assert (await api.get("")).ok  # the connection was dropped, not reused

        run(check)


def test_a_dribbling_server_meets_the_total_deadline() -> None:
    with running_server() as hostile:
        async def check() -> None:
            async with apitx.AsyncAPI.factory(hostile.server_address, timeout=apitx.Timeout(
                    connect=2, read=5, total=1)) as api:
                with pytest.raises(apitx.APITimeoutError, match="total deadline"):
                    await api.get("/dribble")

        run(check)


# -- cancellation -----------------------------------------------------------------------

def test_a_request_cancelled_mid_answer_leaves_no_half_read_connection() -> None:
    """A task cancelled while the server dribbles its answer: the connection
    is closed, not pooled, so the next request reads its own answer."""
    with running_server() as hostile:
        async def check() -> None:
            async with apitx.AsyncAPI.factory(hostile.server_address,
                                              limits=apitx.Limits(max_connections=1)) as api:
                task = asyncio.ensure_future(api.get("/dribble"))
                await asyncio.sleep(0.3)  # its headers arrived; the body dribbles
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                for _ in range(3):  # one connection only: a leftover would be read here
                    assert (await api.get("")).metadata == {"api_version": "1.0"}

        run(check)


def test_a_cancelled_event_iteration_closes_its_websocket() -> None:
    with running_ws_server([], then_drop=False) as server:
        server.ping_every = 0.05

        async def check() -> None:
            async with apitx.AsyncAPI.factory(server.server_address) as api:
                stream = await api.events()

                async def read() -> None:
                    async for _ in stream:
                        pass

                task = asyncio.ensure_future(read())
                await asyncio.sleep(0.2)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                assert stream._ws.closed  # noqa: SLF001 - what the test is about

        run(check)


# -- concurrency ----------------------------------------------------------------------

@live
def test_a_thousand_concurrent_requests_open_no_more_sockets_than_the_cap(
        server: SandboxServer, socket_connects: List[Any]) -> None:
    async def check() -> None:
        async with apitx.AsyncAPI.factory(server.socket,
                                          limits=apitx.Limits(max_connections=16)) as api:
            answers = await asyncio.gather(*[api.get("") for _ in range(1000)])
            assert all(answer.metadata["api_version"] == "1.0" for answer in answers)

    run(check)
    assert 1 <= len([a for a in socket_connects if a == server.socket]) <= 16


def test_the_sync_import_does_not_import_aiohttp() -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", "import sys, apitx; "
                           "apitx.API.factory('/nonexistent/x.socket'); "
                           "print('aiohttp' in sys.modules)"], capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr


# -- exec ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def running(live: Any) -> Any:
    """A running instance on each daemon, made once for the module (tests/live.py)."""
    return live


@pytest.mark.parametrize("daemon", ["lxd", "incus"])
@live
def test_exec_streams_stdin_exit_codes_and_bytes(running: Any, daemon: str) -> None:
    server = {"lxd": "/var/lib/lxd/unix.socket", "incus": "/var/lib/incus/unix.socket"}[daemon]
    name = running.instance(daemon)

    async def check() -> None:
        async with apitx.AsyncAPI.factory(server) as api:
            done = await api.exec(name, ["sh", "-c", "cat; echo err >&2; exit 3"], stdin=b"in\n")
            assert (done.return_code, done.stdout, done.stderr) == (3, b"in\n", b"err\n")
            assert (await api.exec(name, ["apitx-no-such-command"])).return_code == 127
            data = os.urandom(5 * 1024 * 1024)

            async def pieces():
                for start in range(0, len(data), 70_000):
                    yield data[start:start + 70_000]

            got: List[bytes] = []

            async def sink(piece: bytes) -> None:  # a coroutine function, awaited
                got.append(piece)

            hashed = await api.exec(name, ["sha256sum"], stdin=pieces())
            assert hashed.stdout.split()[0].decode() == hashlib.sha256(data).hexdigest()
            await api.exec(name, ["head", "-c", "3000000", "/dev/urandom"], stdout=sink)
            assert sum(map(len, got)) == 3_000_000

    run(check)


@live
def test_exec_timeout_kills_the_command_and_all_it_started(running: Any) -> None:
    name = running.instance("lxd")
    seconds = 3000 + int.from_bytes(os.urandom(2), "big") % 1000

    async def check() -> None:
        async with apitx.AsyncAPI.factory("/var/lib/lxd/unix.socket") as api:
            with pytest.raises(apitx.ExecTimeout) as info:
                await api.exec(name, ["sh", "-c", f"echo started; sleep {seconds} & wait"],
                               timeout=2)
            assert info.value.stdout == b"started\n"
            left = await api.exec(name, ["sh", "-c", f"ps -o args | grep -c '[s]leep {seconds}'"
                                         " || true"])
            assert left.stdout.strip() == b"0"

    run(check)


@live
def test_a_cancelled_exec_kills_the_command_and_all_it_started(running: Any) -> None:
    name = running.instance("lxd")
    seconds = 3000 + int.from_bytes(os.urandom(2), "big") % 1000

    async def check() -> None:
        async with apitx.AsyncAPI.factory("/var/lib/lxd/unix.socket") as api:
            seen = asyncio.Event()

            def output(piece: bytes) -> None:
                seen.set()

            task = asyncio.ensure_future(api.exec(
                name, ["sh", "-c", f"echo started; sleep {seconds} & wait"], stdout=output))
            await asyncio.wait_for(seen.wait(), 60)  # it runs
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            left = await api.exec(name, ["sh", "-c", f"ps -o args | grep -c '[s]leep {seconds}'"
                                         " || true"])
            assert left.stdout.strip() == b"0"

    run(check)


@live
def test_exec_in_a_terminal_is_sized_and_resizable(running: Any) -> None:
    name = running.instance("lxd")

    async def check() -> None:
        async with apitx.AsyncAPI.factory("/var/lib/lxd/unix.socket") as api:
            async def resize(control: Any) -> None:
                await control.resize(100, 30)

            # stty size after the resize; the command waits for a line first,
            # sent after the resize, so the race at a terminal's exit has
            # nothing to lose (see tests/test_exec.py).
            done = await api.exec(name, ["sh", "-c", "stty -echo; read x; stty size"],
                                  stdin=b"go\r", terminal=(80, 24), on_start=resize)
            assert done.return_code == 0 and b"30 100" in done.stdout

    run(check)


@pytest.mark.live
def test_the_trace_shows_a_websocket_upgrade_as_the_sync_client_does(
        lxd_only_socket: str, caplog: Any) -> None:
    # Without the upgrade's line, an async trace's "#wsN <" messages came
    # from a websocket the trace never showed opening (the sync trace shows it).
    caplog.set_level(logging.DEBUG, logger="apitx")

    async def listen() -> None:
        async with apitx.AsyncAPI.factory(lxd_only_socket, debug=True) as api:
            async with await api.events(types=["lifecycle"]):
                pass
    run(listen)
    assert re.search(r"#ws\d+ GET unix:\S+ /1\.0/events\?type=lifecycle upgraded to a "
                     r"websocket \d+\.\d ms\nHTTP/101 Switching Protocols\n-{72}", caplog.text)


@live
def test_websockets_refused_all_at_once_say_the_command_never_ran(running: Any) -> None:
    # The async exec opens its four websockets at once: when LXD refuses
    # them all (it gave up waiting after 5 s), the error still says none
    # connected and that a retry is safe, and nothing is left open.
    from apitx._aio._exec import _Run
    from apitx._exec_plan import ExecPlan, Outputs

    name = running.instance("lxd")

    async def check() -> None:
        async with apitx.AsyncAPI.factory("/var/lib/lxd/unix.socket") as api:
            started = await api.post(f"instances/{name}/exec", json={
                "command": ["true"], "environment": {}, "wait-for-websocket": True,
                "interactive": False})
            with pytest.raises(apitx.APIException, match="Timed out waiting for websockets"):
                await started.wait(30)  # LXD gives up on them after 5 s
            plan = ExecPlan.make(name, ["true"], env=None, cwd=None, user=None, group=None,
                                 timeout=None, terminal=None)
            attempt = _Run(api, plan, started, Outputs(plan, None, None), None)
            try:
                with pytest.raises(apitx.APIException, match=r"Only running operations can be "
                                   r"connected: .*Timed out waiting for websockets to connect; "
                                   r"0 of 4 .*the command never ran, so it is safe to retry"):
                    await attempt.connect()
                assert attempt.ws == {}
            finally:
                attempt.close()

    run(check)
