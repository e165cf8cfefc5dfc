"""api.websocket(): connect, refuse, time out and trace, against the real LXD.

The hostile websocket server covers only what LXD cannot show on request:
the headers apitx sends.
"""

from __future__ import annotations

import logging
import re

import pytest

import apitx
from apitx._transports._websocket import describe_message, ssl_context
from hostile_ws import running_ws_server
from live import https_api

SECRET_HEX = re.compile(r"[0-9a-f]{64}")


def waiting_exec(api: apitx.API, instance: str) -> apitx.APIResult:
    """An exec of `true` whose websockets are not connected yet."""
    return api.post(f"instances/{instance}/exec", json={
        "command": ["true"], "wait-for-websocket": True, "interactive": False})


def finish(api: apitx.API, started: apitx.APIResult, control=None) -> None:
    """Connect the websockets still missing, so LXD runs the command and ends
    the operation. (Closing control before the command ends kills it: measured.)"""
    fds = started.metadata["metadata"]["fds"]
    path = started.operation + "/websocket"
    sockets = [control or api.websocket(path, {"secret": fds["control"]})]
    sockets += [api.websocket(path, {"secret": fds[k]}) for k in ("0", "1", "2")]
    sockets[1].send_close()
    assert started.wait(30).metadata["metadata"]["return"] == 0
    for ws in sockets:
        ws.close()


@pytest.mark.live
def test_wrong_secret_raises_the_servers_refusal(target):
    api, instance = target
    started = waiting_exec(api, instance)
    try:
        with pytest.raises(apitx.APIException) as caught:
            api.websocket(started.operation + "/websocket", {"secret": "not-the-secret"})
        # Measured: LXD 5.0.2 answers HTTP 500 "permission denied"; Incus 6.0 403 "Forbidden".
        assert (caught.value.status_code, caught.value.error) in (
            (500, "permission denied"), (403, "Forbidden"))
        assert "secret=<redacted>" in str(caught.value)
        assert "not-the-secret" not in str(caught.value)
    finally:
        finish(api, started)


@pytest.mark.live
def test_missing_operation_is_not_found(target):
    api, _ = target
    with pytest.raises(apitx.APINotFoundException, match="Operation not found"):
        api.websocket("/1.0/operations/nope/websocket", {"secret": "x"})


@pytest.mark.live
def test_read_timeout_raises_apitx_timeout(target):
    api, instance = target
    started = waiting_exec(api, instance)
    fds = started.metadata["metadata"]["fds"]
    control = api.websocket(started.operation + "/websocket", {"secret": fds["control"]},
                            timeout=(2, 0.3))
    with pytest.raises(apitx.APITimeoutError, match="nothing received in time"):
        control.recv()  # control carries no messages until we send some
    finish(api, started, control)


@pytest.mark.live
def test_https_untrusted_server_is_a_tls_failure(lxd_only_socket):
    with https_api() as api, pytest.raises(apitx.APIConnectionError,
                                           match="TLS failure.*verify="):
        api.websocket("events")


def test_no_socket_names_the_fix():
    api = apitx.API.factory("/nonexistent/apitx.sock")
    with pytest.raises(apitx.APIConnectionError, match="no socket at /nonexistent/apitx.sock"):
        api.websocket("events")


def test_no_origin_header_is_sent():
    with running_ws_server(["{}"], then_drop=False) as server:
        api = apitx.API.factory(server.server_address)
        with api.websocket("events") as ws:
            assert ws.recv() == "{}"
        assert server.requests and "origin" not in server.requests[0]


@pytest.mark.live
def test_trace_shows_handshake_and_messages_never_secrets(live, lxd_only_socket, caplog):
    caplog.set_level(logging.DEBUG, logger="apitx")
    with apitx.API.factory(lxd_only_socket, debug=True) as api:
        started = waiting_exec(api, live.instance("lxd"))
        fds = started.metadata["metadata"]["fds"]
        path = started.operation + "/websocket"
        control, stdin, stdout, stderr = [api.websocket(path, {"secret": fds[k]})
                                          for k in ("control", "0", "1", "2")]
        stdin.send_binary(b"hi")
        stdin.send_close()
        assert stdout.recv() == ""  # `true` wrote nothing: only LXD's end of stream
        started.wait(30)
        for ws in (control, stdin, stdout, stderr):
            ws.close()
    text = caplog.text
    assert re.search(r"#ws\d+ GET unix:\S+ /1\.0/operations/\S+/websocket\?secret=<redacted> "
                     r"upgraded to a websocket", text)
    assert re.search(r"#ws\d+ > <binary 2 bytes>\n", text)
    assert re.search(r"#ws\d+ > <close>", text)
    assert re.search(r'#ws\d+ < "" \(0 bytes\)', text)  # LXD's end of stdout
    assert not SECRET_HEX.search(text), "a websocket secret leaked into the trace"


def test_describe_message_redacts_and_sizes():
    assert describe_message(b"\x00" * 5) == "<binary 5 bytes>"
    shown = describe_message('{"metadata": {"fds": {"0": "abc"}, "password": "p"}}')
    assert "abc" not in shown and '"p"' not in shown and shown.endswith("(52 bytes)")
    assert describe_message("two\nlines") == '"two\\nlines" (9 bytes)'


@pytest.mark.live
def test_a_pinned_endpoint_checks_the_pin_before_the_upgrade(lxd_only_socket):
    with https_api(fingerprint="sha256:" + "0" * 64) as api, \
            pytest.raises(apitx.CertificateMismatch, match="not the pinned sha256:0000"):
        api.websocket("events")


def test_only_the_system_trust_loads_the_system_ca_store():
    """Loading it costs ~90 ms a websocket: a pinned endpoint (verify=False,
    the pin checked after the handshake) and a CA file never need it."""
    assert ssl_context(None, False).cert_store_stats()["x509_ca"] == 0
    assert ssl_context(None, "/var/lib/apitx-sandbox/server.crt").cert_store_stats()["x509"] == 1
    assert ssl_context(None, True).cert_store_stats()["x509_ca"] > 10
