"""The relay's frame forwarding, on socket pairs: every length form, masks
undone and redone, payloads cut in pieces, the end of a connection.

No server is needed: what a server sends is written into one end of a
socket pair, exactly as RFC 6455 frames it, and what the relay writes to the
other server is read from another. The live relay (between real LXD and
Incus daemons) is tested in test_migrate.py.
"""

from __future__ import annotations

import os
import socket
import struct
import threading
from typing import List, Optional, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apitx._transports._relay import CHUNK, Relay, _Ended, _forward_frame, _Reader, _xor


def frame(opcode: int, payload: bytes, *, fin: bool = True, key: Optional[bytes] = None) -> bytes:
    """One frame as a server (no key) or a client (a key) sends it."""
    first = (0x80 if fin else 0) | opcode
    mask = 0x80 if key is not None else 0
    size = len(payload)
    if size < 126:
        head = bytes((first, mask | size))
    elif size < 1 << 16:
        head = bytes((first, mask | 126)) + struct.pack("!H", size)
    else:
        head = bytes((first, mask | 127)) + struct.pack("!Q", size)
    if key is None:
        return head + payload
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def read_frame(sock: socket.socket) -> Tuple[int, bool, int, bytes, bytes]:
    """(first byte, masked, length field form, key, unmasked payload) of one frame."""
    def exact(size: int) -> bytes:
        data = b""
        while len(data) < size:
            piece = sock.recv(size - len(data))
            assert piece, "the relay's side ended midway"
            data += piece
        return data

    first, second = exact(2)
    size, form = second & 0x7F, second & 0x7F
    if size == 126:
        (size,) = struct.unpack("!H", exact(2))
    elif size == 127:
        (size,) = struct.unpack("!Q", exact(8))
    key = exact(4) if second & 0x80 else b""
    payload = exact(size)
    if key:
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return first, bool(second & 0x80), form, key, payload


def forward(data: bytes, reads: Optional[List[int]] = None
            ) -> Tuple[Tuple[int, int], Tuple[int, bool, int, bytes, bytes]]:
    """Feed ``data`` (one frame from a server) to _forward_frame; return its
    answer and the frame it wrote (read as it is written: a socket pair
    holds less than the largest frames here). ``reads`` collects the size of
    each read the relay asks of the socket."""
    server, source = socket.socketpair()
    sink, target = socket.socketpair()
    target.settimeout(10)
    written: List[Tuple[int, bool, int, bytes, bytes]] = []
    writer = threading.Thread(target=server.sendall, args=(data,))
    reader = threading.Thread(target=lambda: written.append(read_frame(target)))
    writer.start()
    reader.start()
    try:
        answer = _forward_frame(_Reader(Recording(source, reads)), sink)  # type: ignore
    finally:
        writer.join()
        reader.join(30)
    return answer, written[0]


class Recording:
    """A socket whose reads are recorded (their requested sizes)."""

    def __init__(self, sock: socket.socket, reads: Optional[List[int]]) -> None:
        self.sock, self.reads = sock, reads if reads is not None else []

    def recv(self, most: int) -> bytes:
        self.reads.append(most)
        return self.sock.recv(most)


@pytest.mark.parametrize("size, form", [(0, 0), (125, 125), (126, 126), (65535, 126),
                                        (65536, 127), (3 * CHUNK + 7, 127)])
def test_every_length_form_is_forwarded_masked_and_whole(size, form):
    payload = os.urandom(size)
    (opcode, length), (first, masked, seen_form, key, out) = forward(frame(0x2, payload))
    assert (opcode, length) == (0x2, size)
    assert (first, masked, seen_form, len(key)) == (0x82, True, form, 4)
    assert out == payload


def test_a_masked_frame_is_unmasked_and_masked_anew():
    payload = os.urandom(1000)
    (opcode, _), (first, masked, _, _, out) = forward(frame(0x1, payload,
                                                          key=b"\x01\x02\x03\x04"))
    assert (opcode, first, masked) == (0x1, 0x81, True) and out == payload


def test_fragments_and_control_frames_keep_their_first_byte():
    for first_byte, opcode in ((0x02, 0x2), (0x00, 0x0), (0x89, 0x9), (0x88, 0x8)):
        fin = bool(first_byte & 0x80)
        (seen, _), written = forward(frame(opcode, b"ab", fin=fin))
        assert seen == opcode and written[0] == first_byte


def test_a_frame_cut_midway_says_so():
    head = frame(0x2, os.urandom(100))[:50]  # the header and 48 bytes of the payload
    server, source = socket.socketpair()
    sink, _ = socket.socketpair()
    server.sendall(head)
    server.close()
    with pytest.raises(_Ended) as ended:
        _forward_frame(_Reader(source), sink)
    assert ended.value.midway


def test_an_end_between_frames_is_not_midway():
    server, source = socket.socketpair()
    sink, _ = socket.socketpair()
    server.close()
    with pytest.raises(_Ended) as ended:
        _forward_frame(_Reader(source), sink)
    assert not ended.value.midway and ended.value.reason == ""


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.binary(min_size=4, max_size=4), st.integers(0, 1000),
       st.integers(1, 300))
def test_xor_in_pieces_is_xor_of_the_whole(data, key, offset, piece):
    """Masking piece by piece (at any offset into the frame) is masking the
    whole: the key's phase follows the offset."""
    whole = bytes(b ^ key[(offset + i) % 4] for i, b in enumerate(data))
    pieces = b"".join(_xor(data[i:i + piece], key, offset + i)
                      for i in range(0, len(data), piece))
    assert pieces == whole


class Connection:
    """The part of a WebSocketConnection the relay uses, over a socket pair."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.traced = False
        self.endpoint = "test"

    def relay_socket(self) -> socket.socket:
        return self.sock

    def abort(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        self.sock.close()


def relay_pair() -> Tuple[Relay, socket.socket, socket.socket]:
    """A relay of one websocket; the two servers' ends of it."""
    source_server, source_ours = socket.socketpair()
    target_server, target_ours = socket.socketpair()
    for end in (source_server, target_server):
        end.settimeout(10)  # a frame that never comes fails the test, not hangs it
    relay = Relay([("fs", Connection(source_ours), Connection(target_ours))])  # type: ignore
    relay.start()
    return relay, source_server, target_server


def test_both_ways_are_carried_and_counted():
    relay, source, target = relay_pair()
    try:
        source.sendall(frame(0x2, b"x" * 70000) + frame(0x1, b""))
        target.sendall(frame(0x2, b"ack"))
        assert read_frame(target)[4] == b"x" * 70000
        assert read_frame(target)[4] == b""
        assert read_frame(source)[4] == b"ack"
        source.sendall(frame(0x8, struct.pack("!H", 1000)))
        assert read_frame(target)[0] == 0x88
        target.sendall(frame(0x8, struct.pack("!H", 1000)))
        assert read_frame(source)[0] == 0x88
    finally:
        relay.close()
    counts = relay.counts()
    assert (counts[("fs", "source→target")].frames, counts[("fs", "source→target")].bytes) == \
        (3, 70002)
    assert (counts[("fs", "target→source")].frames, counts[("fs", "target→source")].bytes) == \
        (2, 5)
    assert relay.carried == 70007 and relay.problems == {}


def test_a_server_that_drops_its_connection_becomes_a_close_frame_for_the_other():
    """LXD drops its fs websocket without a close frame once done: the other
    server gets everything sent before, then a close frame (1001)."""
    relay, source, target = relay_pair()
    try:
        source.sendall(frame(0x2, b"last bytes"))
        source.close()
        assert read_frame(target)[4] == b"last bytes"
        first, _, _, _, payload = read_frame(target)
        assert (first, payload) == (0x88, struct.pack("!H", 1001))
    finally:
        relay.close()


def test_no_more_than_a_chunk_is_read_at_once():
    """The relay reads CHUNK bytes at a time, whatever the frame says."""
    reads: List[int] = []
    payload = os.urandom(5 * CHUNK + 3)
    (_, length), written = forward(frame(0x2, payload), reads)
    assert length == len(payload) and max(reads) == CHUNK
    assert written[4] == payload


def test_small_frames_share_reads():
    """Many small frames (and their headers) come out of one read."""
    reads: List[int] = []
    server, source = socket.socketpair()
    sink, target = socket.socketpair()
    target.settimeout(10)
    server.sendall(b"".join(frame(0x2, bytes([n]) * 100) for n in range(50)))
    reader = _Reader(Recording(source, reads))  # type: ignore
    for n in range(50):
        assert _forward_frame(reader, sink) == (0x2, 100)
        assert read_frame(target)[4] == bytes([n]) * 100
    assert len(reads) == 1
