"""apitx._exceptions: messages people can act on, for every failure.

Connection failures are produced for real: a socket path that does not exist,
a socket nobody listens on, a regular file, a non-root user on LXD's
root-only socket, a TLS handshake with an untrusted certificate.
"""

import os
import socket
import tempfile

import pytest

import apitx
from apitx import (APIConnectionError, APIException, APINotFoundException, APITimeoutError,
                   APITXError, EndpointError, OperationTimeout)

from sandbox import SANDBOX_HTTPS

live = pytest.mark.live


def test_tree():
    assert issubclass(APINotFoundException, APIException)
    assert issubclass(OperationTimeout, APITimeoutError)
    assert issubclass(APITimeoutError, TimeoutError)
    assert issubclass(EndpointError, ValueError)
    for cls in (APIException, APIConnectionError, APITimeoutError, EndpointError):
        assert issubclass(cls, APITXError)
    assert all(name in apitx.__all__ for name in (
        "APITXError", "APIException", "APINotFoundException", "APIConnectionError",
        "APITimeoutError", "OperationTimeout"))


@live
def test_not_found_is_one_readable_line(api, lxd_socket):
    with pytest.raises(APINotFoundException) as info:
        api.get("instances/c1-missing")
    assert str(info.value) == (f"GET unix:{lxd_socket} /1.0/instances/c1-missing: "
                               "Instance not found")
    assert info.value.error == "Instance not found"
    assert info.value.status_code == 404
    assert info.value.result.status_code == 404


@live
def test_unknown_path_and_malformed_json(api):
    with pytest.raises(APINotFoundException, match="not found"):
        api.get("/1.0/no-such-collection")
    with pytest.raises(APIException) as info:
        api.post("instances", data=b"{nope", headers={"Content-Type": "application/json"})
    assert info.value.status_code == 400
    assert "invalid character" in info.value.error


@live
def test_stale_etag_is_412_with_lxd_message(api):
    with pytest.raises(APIException) as info:
        api.put("profiles/default", json={}, headers={"If-Match": "stale"})
    assert info.value.status_code == 412
    assert "ETag doesn't match" in info.value.error


def test_missing_socket():
    with pytest.raises(APIConnectionError) as info:
        apitx.API.factory("/nonexistent/lxd.socket").get("")
    message = str(info.value)
    assert message.startswith("GET unix:/nonexistent/lxd.socket /1.0: no socket at ")
    assert "is the daemon running?" in message
    assert isinstance(info.value.__cause__, Exception)
    assert info.value.endpoint == "unix:/nonexistent/lxd.socket"


def test_refused_socket_nobody_listens():
    with tempfile.TemporaryDirectory(prefix="apitx-") as tmp:
        path = os.path.join(tmp, "dead.sock")
        dead = socket.socket(socket.AF_UNIX)
        dead.bind(path)  # bound, never listening: connect() is refused
        try:
            with pytest.raises(APIConnectionError, match="connection refused .* is the daemon"):
                apitx.API.factory(path).get("")
        finally:
            dead.close()


def test_regular_file_is_not_a_socket(tmp_path):
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(APIConnectionError, match="is not a socket"):
        apitx.API.factory(str(path)).get("")


@live
def test_permission_denied_for_a_non_root_user(lxd_socket):
    """A real non-root process (nobody) against LXD's root-group 0660 socket."""
    if os.getuid() != 0:
        pytest.fail("this test needs root to become another user; run the suite as root")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child becomes nobody, tries, and reports
        code = 1
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            try:
                apitx.API.factory(lxd_socket).get("")
                report = "no error"
            except APIConnectionError as exc:
                report = f"{type(exc.__cause__).__name__}|{exc}"
            os.write(write_end, report.encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    report = os.read(read_end, 4096).decode()
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    assert status == 0
    cause, message = report.split("|", 1)
    assert cause == "ConnectionError"
    assert f"permission denied on unix:{lxd_socket}" in message
    assert "add your user to the 'lxd' group" in message


@live
def test_tls_failure_names_verify_and_cert():
    with pytest.raises(APIConnectionError) as info:
        apitx.API.factory(SANDBOX_HTTPS).get("")
    message = str(info.value)
    assert "TLS failure with https://127.0.0.1:8443" in message
    assert "verify=" in message and "cert=" in message


def test_connect_timeout_when_the_daemon_never_accepts():
    """A listening socket whose backlog is full: connect() really blocks."""
    with tempfile.TemporaryDirectory(prefix="apitx-") as tmp:
        path = os.path.join(tmp, "stuck.sock")
        stuck = socket.socket(socket.AF_UNIX)
        stuck.bind(path)
        stuck.listen(0)
        fillers = []
        try:
            for _ in range(4):  # fill the backlog; never accept
                filler = socket.socket(socket.AF_UNIX)
                filler.setblocking(False)
                try:
                    filler.connect(path)
                except BlockingIOError:
                    pass
                fillers.append(filler)
            api = apitx.API.factory(path, timeout=apitx.Timeout(connect=0.3, read=5))
            with pytest.raises(APITimeoutError, match="timed out connecting"):
                api.get("")
        finally:
            for sock in fillers + [stuck]:
                sock.close()


def test_messages_redact_query_secrets_and_url_passwords(hostile_api, hostile, monkeypatch):
    with pytest.raises(APINotFoundException) as info:
        hostile_api.get("instances/x", params={"secret": "hunter2", "name": "ok"})
    assert str(info.value) == (f"GET unix:{hostile.server_address} "
                               "/1.0/instances/x?secret=<redacted>&name=ok: not found")
    assert "hunter2" not in repr(info.value.result)
    # The environment is read once, when an API is made: setting it later
    # changes nothing for this API, and a new one shows secrets.
    monkeypatch.setenv("APITX_DEBUG_UNSAFE", "1")
    assert "hunter2" not in info.value.result.request_line()
    with apitx.API.factory(hostile.server_address) as unsafe:
        shown = unsafe.get("instances/x", params={"secret": "hunter2"}, validate=False)
    assert "secret=hunter2" in shown.request_line()
    remote = apitx.API.factory("https://admin:s3cret@127.0.0.1:1")
    with pytest.raises(APIConnectionError) as refused:
        remote.get("")
    assert "s3cret" not in str(refused.value) and "s3cret" not in repr(remote)
    assert "https://<redacted>@127.0.0.1:1/1.0" in str(refused.value)


@pytest.mark.parametrize("kwargs, words", [
    ({"headers": {"X-Auth-Token": "tok-PLANTED\nX-Evil: 1"}}, "header X-Auth-Token cannot be sent"),
    ({"json": {"limit": float("nan")}}, "InvalidJSONError"),
])
def test_requests_that_cannot_be_sent_are_the_callers_mistake(hostile_api, hostile, kwargs,
                                                              words):
    with pytest.raises(apitx.RequestError, match=words) as info:
        hostile_api.post("instances", **kwargs)
    assert isinstance(info.value, ValueError)
    assert "PLANTED" not in str(info.value) and "nothing was sent" in str(info.value)
    assert hostile.log == []


def test_a_path_prefix_is_shown_once():
    from hostile import HostileTCPServer
    import threading
    server = HostileTCPServer()
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    try:
        host, port = server.server_address
        with apitx.API.factory(f"http://{host}:{port}/prefix") as api:
            with pytest.raises(APINotFoundException) as info:
                api.get("instances/c1")
        assert server.log[-1][1] == "/prefix/1.0/instances/c1"
        assert str(info.value) == f"GET http://{host}:{port}/prefix/1.0/instances/c1: not found"
    finally:
        server.shutdown()
        server.server_close()


def test_a_bad_debug_variable_is_refused_when_the_api_is_made(hostile, monkeypatch):
    monkeypatch.setenv("APITX_DEBUG_MAX_BODY", "lots")
    with pytest.raises(apitx.SettingsError, match="APITX_DEBUG_MAX_BODY='lots'"):
        apitx.API.factory(hostile.server_address)


def test_reading_the_transaction_of_an_error_never_raises(hostile_api, monkeypatch):
    # Before, every rendering re-read the environment: a bad value set by
    # then made exc.transaction raise ValueError inside the caller's handler.
    with pytest.raises(APINotFoundException) as info:
        hostile_api.get("instances/x")
    monkeypatch.setenv("APITX_DEBUG_MAX_BODY", "lots")
    monkeypatch.setenv("APITX_DEBUG", "xml")
    assert "GET /1.0/instances/x" in info.value.transaction
    assert "HTTP/404" in info.value.transaction
    assert "HTTP/404" in info.value.result.response_summary()
    assert info.value.result.curl().startswith("curl --unix-socket ")
