"""api.websocket(): connect, refuse, time out and trace, against the real LXD.

The hostile websocket server covers only what LXD cannot show on request:
the headers apitx sends, what it does not send (a silent websocket), and
frames no real server sends (huge, fragmented, malformed).
"""

from __future__ import annotations

import logging
import os
import re

import pytest

import apitx
from apitx._transports._messages import describe_message
from apitx._transports._websocket import ssl_context
from hostile_ws import (BINARY, CLOSE, CONTINUATION, PING, TEXT, frame, header,
                        running_ws_server)
from live import https_api
from tls import make_cert

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


# -- what apitx does not send: silence -------------------------------------------

def _ping_and_close(server_messages, silent):
    """Read a ping and a close frame with ``silent`` set; the bytes the server got back."""
    with running_ws_server(server_messages, then_drop=False) as server:
        api = apitx.API.factory(server.server_address, timeout=(5, 5))
        ws = api.websocket("events")
        ws.silent = silent
        assert ws.recv() is None  # the ping is no message; the close ends the stream
        assert ws.pings == 1
        ws.close()  # the server sees our end, and files what it received
        assert server.recorded.wait(10)
        return server.received[0]


def test_a_silent_websocket_answers_neither_ping_nor_close():
    """Exec's websockets are silent: LXD never reads stderr, and one unread
    byte there turned its close into a reset that lost output (HTTPS)."""
    messages = [frame(PING, b"keepalive"), frame(CLOSE, b"\x03\xe8")]
    assert _ping_and_close(messages, silent=True) == b""
    # The same frames to a connection that is not silent: a pong, then a close
    # frame (masked client frames: opcode bytes 0x8a and 0x88).
    answered = _ping_and_close(messages, silent=False)
    assert answered[0] == 0x8A and 0x88 in answered[2:]


# -- message caps ------------------------------------------------------------------

def test_a_huge_frame_is_refused_from_its_header():
    """A 1 GiB frame whose payload never comes: refused at once from its header
    (reading the payload would wait for the 5 s read timeout instead)."""
    with running_ws_server([header(BINARY, 1 << 30) + b"x" * 100], then_drop=False) as server:
        api = apitx.API.factory(server.server_address, timeout=(5, 5))
        ws = api.websocket("events")
        with pytest.raises(apitx.ResponseTooLarge) as caught:
            ws.recv()
        assert "frame of 1073741824 bytes" in str(caught.value)
        assert f"larger than {64 * 1024 * 1024} bytes (max_answer_bytes)" in str(caught.value)
        assert "connection was closed" in str(caught.value) and ws.closed


def test_fragments_are_joined_and_capped_as_one_message():
    piece = "x" * 300
    fragmented = [frame(TEXT, piece.encode(), fin=False), frame(PING, b""),
                  frame(CONTINUATION, piece.encode(), fin=False),
                  frame(CONTINUATION, piece.encode())]
    too_long = [frame(BINARY, b"y" * 300, fin=False)] + [
        frame(CONTINUATION, b"y" * 300, fin=False)] * 3
    with running_ws_server(fragmented + too_long, then_drop=False) as server:
        api = apitx.API.factory(server.server_address, timeout=(5, 5), max_answer_bytes=1000)
        ws = api.websocket("events")
        assert ws.recv() == piece * 3  # 900 bytes, a ping between the pieces
        with pytest.raises(apitx.ResponseTooLarge, match=r"larger than 1000 bytes "
                           r"\(max_answer_bytes\): a frame of 300 bytes after 900 in fragments"):
            ws.recv()


@pytest.mark.parametrize("frames, problem", [
    ([frame(CONTINUATION, b"x")], "a continuation frame with no message to continue"),
    ([frame(TEXT, b"a", fin=False), frame(TEXT, b"b")], "a new message inside a fragmented"),
    ([header(PING, 126) + b"p" * 126], "a control frame of 126 bytes"),
])
def test_a_broken_protocol_is_a_connection_error(frames, problem):
    with running_ws_server(frames, then_drop=False) as server:
        ws = apitx.API.factory(server.server_address, timeout=(5, 5)).websocket("events")
        with pytest.raises(apitx.APIConnectionError, match=f"broke the websocket protocol "
                           f"\\({problem}"):
            ws.recv()
        assert ws.closed


def test_tls_settings_are_built_once_until_their_files_change(tmp_path):
    """Four websockets per exec each built them (40-60 ms with the system's
    CA store): under 16 threads an exec's websockets then took longer than the
    5 s LXD waits for them. A renewed certificate is read again."""
    client = make_cert(str(tmp_path), "client")
    server, _ = make_cert(str(tmp_path), "server", ca=True)
    first = ssl_context(client, server)
    assert ssl_context(list(client), server) is first
    assert ssl_context(client, False) is not first
    os.utime(client[0], ns=(0, os.stat(client[0]).st_mtime_ns + 10**9))
    assert ssl_context(client, server) is not first


def test_only_the_system_trust_loads_the_system_ca_store():
    """Loading it costs ~90 ms a websocket: a pinned endpoint (verify=False,
    the pin checked after the handshake) and a CA file never need it."""
    assert ssl_context(None, False).cert_store_stats()["x509_ca"] == 0
    assert ssl_context(None, "/var/lib/apitx-sandbox/server.crt").cert_store_stats()["x509"] == 1
    assert ssl_context(None, True).cert_store_stats()["x509_ca"] > 10
