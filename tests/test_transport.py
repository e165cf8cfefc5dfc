"""apitx._transport: one pool per socket, and faults turned into apitx errors."""

import os
import threading

import pytest
import requests
import requests_unixsocket

import apitx
from apitx import APIConnectionError, APITimeoutError, APITXError
from apitx._transports._adapters import StrictLengthAdapter, UnixSocketAdapter
from apitx._transports._unix import UnixSocketConnectionPool

from hostile import HostileTCPServer

live = pytest.mark.live


@live
def test_one_socket_for_many_urls_and_query_strings(api, lxd_socket, socket_connects):
    for i in range(200):
        api.get("instances", params={"recursion": 0, "filter": f"name eq x{i}"})
        api.get(f"/1.0/instances/missing-{i}", validate=False)
    assert socket_connects == [lxd_socket]


@live
def test_requests_unixsocket_opens_a_socket_per_url(lxd_socket, socket_connects):
    # The fault our pool exists for, shown on the real thing, so this test
    # fails if the comparison in the README ever stops being true.
    session = requests_unixsocket.Session()
    base = "http+unix://" + lxd_socket.replace("/", "%2F")
    for i in range(5):
        session.get(f"{base}/1.0/instances?x={i}")
    assert len(socket_connects) == 5


@pytest.mark.sync_only  # threads / trees: the sync client's own
@live
def test_threads_share_one_api(api, lxd_socket, socket_connects):
    errors, names = [], []

    def work():
        try:
            for _ in range(25):
                names.append(api.get("").metadata["api_version"])
                api.get("instances/none", validate=False)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert names == ["1.0"] * 100
    assert 1 <= len(socket_connects) <= 4
    assert set(socket_connects) == {lxd_socket}


def test_adapter_owns_exactly_one_pool(hostile):
    adapter = UnixSocketAdapter(hostile.server_address)
    assert isinstance(adapter.pool, UnixSocketConnectionPool)
    assert adapter.get_connection("http+unix://lxd/a?x=1") is adapter.get_connection(
        "http+unix://lxd/b?y=2")


@pytest.mark.parametrize("path, error, words", [
    ("/garbage", APIConnectionError, "did not answer in HTTP"),
    ("/close", APIConnectionError, "closed the connection without an answer"),
    ("/truncated", APIConnectionError, "broke mid-answer"),
    ("/slow", APITimeoutError, "timed out waiting for the answer"),
])
@pytest.mark.parametrize("stream", [False, True])
def test_faults_become_apitx_errors_with_cause(hostile_api, hostile, path, error, words, stream):
    with pytest.raises(error) as info:
        hostile_api.get(path, stream=stream)
    message = str(info.value)
    assert message.startswith(f"GET unix:{hostile.server_address} {path}: ")
    assert words in message
    assert "%2F" not in message
    assert info.value.__cause__ is not None
    assert isinstance(info.value, APITXError)


def test_a_download_that_breaks_raises_apitx_errors(hostile_api, hostile):
    result = hostile_api.get("/truncated-binary", stream=True)
    assert result.data is None and not result.body_read  # binary: left to the caller
    with pytest.raises(APIConnectionError, match="broke mid-answer") as info:
        b"".join(result.iter_content(4))
    assert str(info.value).startswith(f"GET unix:{hostile.server_address} /truncated-binary: ")


def test_failing_streamed_requests_give_their_connection_back(hostile_api, hostile,
                                                              socket_connects):
    for _ in range(5):
        with pytest.raises(apitx.APIException):
            hostile_api.get("/html-502", stream=True)
    assert socket_connects == [hostile.server_address]


def test_one_session_cannot_serve_two_sockets(tmp_path, socket_connects):
    """Decided when the API is made: no server needed, nothing connects."""
    first, second = str(tmp_path / "first.socket"), str(tmp_path / "second.socket")
    session = requests.Session()
    apitx.API(session, first)
    with pytest.raises(apitx.EndpointError, match=f"already talks to unix:{first}"):
        apitx.API(session, second)
    apitx.API(session, first)  # the same socket again is fine
    assert socket_connects == []


def test_slow_answer_within_timeout_succeeds(hostile, socket_connects):
    hostile.slow_seconds = 0.3
    with apitx.API.factory(hostile.server_address, default_version=None,
                           timeout=apitx.Timeout(read=2)) as api:
        assert api.get("/slow", validate=False).status_code == 404


@pytest.mark.parametrize("path, error", [("/truncated", "broke mid-answer"),
                                         ("/garbage", "did not answer in HTTP")])
def test_http_endpoints_get_the_same_fault_handling(path, error):
    server = HostileTCPServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        host, port = server.server_address
        with apitx.API.factory(f"http://{host}:{port}") as api:
            assert isinstance(api.session.get_adapter(f"http://{host}:{port}/"),
                              StrictLengthAdapter)
            assert api.get("/1.0").metadata == {"api_version": "1.0"}
            with pytest.raises(APIConnectionError, match=error):
                api.get(path)
    finally:
        server.shutdown()
        server.server_close()


# -- fork(): a child gets connections of its own --------------------------------------

def _hammer(api: apitx.API, path: str, key: str, rounds: int) -> int:
    """How many of ``rounds`` GETs of ``path`` answered with ``key`` in
    their metadata (a mixed-up connection answers another request's)."""
    right = 0
    for _ in range(rounds):
        try:
            metadata = api.get(path).metadata
        except apitx.APITXError:
            continue
        right += isinstance(metadata, dict) and key in metadata
    return right


@live
def test_a_forked_child_gets_connections_of_its_own(lxd_socket, socket_connects):
    # Before, parent and child shared the pooled socket, and each could read
    # answers meant for the other. The child's first request must open a
    # socket of its own (the audit hook counts connects in both processes);
    # the parent keeps its connection; then both hammer the server at once.
    with apitx.API.factory(lxd_socket, timeout=apitx.Timeout(connect=2, read=5)) as api:
        api.get("")  # a pooled, kept-alive connection now exists
        pid = os.fork()
        if pid == 0:  # the child: only os._exit, never pytest's own exit
            code = 3
            try:
                before = len(socket_connects)
                api.get("profiles/default")
                own = len(socket_connects) == before + 1
                right = _hammer(api, "profiles/default", "devices", 300) == 300
                code = 0 if own and right else 1 if not own else 2
            finally:
                os._exit(code)
        before = len(socket_connects)
        parent_right = _hammer(api, "", "api_version", 300)
        parent_connects = len(socket_connects) - before
        _, status = os.waitpid(pid, 0)
    assert parent_right == 300 and parent_connects == 0
    assert os.waitstatus_to_exitcode(status) != 1, "the child reused the parent's connection"
    assert os.waitstatus_to_exitcode(status) == 0, "the child read answers not its own"


@live
def test_multiprocessing_workers_get_connections_of_their_own(lxd_socket):
    import multiprocessing
    with apitx.API.factory(lxd_socket) as api:
        api.get("")
        _shared["api"] = api
        with multiprocessing.get_context("fork").Pool(3) as pool:
            counts = pool.map(_worker, range(6))
        assert _hammer(api, "", "api_version", 100) == 100
    assert counts == [100] * 6


_shared: dict = {}


def _worker(_: int) -> int:
    return _hammer(_shared["api"], "profiles/default", "devices", 100)
