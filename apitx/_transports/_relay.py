"""Carry websockets between two servers, frame by frame, in bounded memory.

A migration in ``relay`` mode opens each of its websockets (``control``,
``fs``, ``criu``) on both servers, and everything one server sends on a
websocket is for the other. Both connections are apitx's own, as a client,
so the relay is at the frame level (RFC 6455 section 5):

- every frame read from one server is written to the other as it comes,
  payload in pieces of at most :data:`CHUNK` bytes: nothing waits for a
  whole message (LXD's messages are up to 32 KiB, but a frame may announce
  any length), so memory stays flat whatever the migration's size;
- a client's frames must be masked and a server's are not: each frame goes
  out under a fresh random key; one key XOR does both unmasking (a masked
  frame, which no server should send) and masking;
- control frames are relayed too (a ping from one server reaches the other,
  whose pong comes back the same way), so each socket has exactly one writer,
  the pump of the other direction, and no lock is needed;
- when a server ends a connection, the other learns it: its close frame is
  relayed like any frame; a connection dropped without one (LXD drops its
  ``fs`` websocket that way once done) becomes a close frame of our own
  (1001, going away) to the other server, after everything read before it.
  Never a reset, and never a TLS shutdown while the other direction still
  reads the same socket, so no byte in flight is lost.

Counts, not contents: :meth:`Relay.counts` says how many frames and payload
bytes went each way on each websocket, and a traced connection gets one
summary line per websocket when the relay ends.

A relayed copy to the second LXD of ``scripts/lxd-pair`` reports what went
through apitx (:attr:`Relay.carried`) as its ``relay`` stage:

>>> from apitx import API, migrate
>>> lxd, lxd2 = API.factory(), API.factory('/var/lib/apitx-pair/lxd2/unix.socket')
>>> relayed = []
>>> def progress(update):
...     if update.stage == 'relay':
...         relayed.append(update.bytes)
>>> try:
...     copy = migrate.copy_instance(lxd, c1, lxd2, new_name=c2, mode='relay',
...                                  progress=progress)
... finally:
...     gone = lxd2.delete(f'instances/{c2}', validate=False).wait(60)  # whatever happened
>>> relayed[-1] > 0
True
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import struct
import threading
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

from ._websocket import WebSocketConnection

logger = logging.getLogger("apitx")

#: The most payload read (and held) at once, per direction of a websocket.
CHUNK = 1 << 16

_OPCODE_CLOSE = 0x8
_DIRECTIONS = ("source→target", "target→source")


#: The close frame sent for a server that dropped its connection without
#: one: masked (as a client's must be), status 1001 "going away".
_GOING_AWAY = struct.pack("!H", 1001)


class _Ended(Exception):
    """The peer ended the connection (EOF, reset, or our own abort);
    ``reason`` is empty for a plain EOF; ``midway`` is True when it ended
    inside a frame that was partly written already."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.midway = False


@dataclass
class Count:
    """What went one way on one websocket: frames, and payload bytes."""

    frames: int = 0
    bytes: int = 0


class Relay:
    """Carries websockets between a source and a target server (see the module).

    ``channels`` are ``(name, source_connection, target_connection)``; each
    connection must be open, with nothing read from it yet. The relay owns
    them from :meth:`start` on: it reads and writes their sockets directly.
    """

    def __init__(self, channels: Sequence[Tuple[str, WebSocketConnection, WebSocketConnection]]
                 ) -> None:
        self.channels = list(channels)
        self._counts: Dict[Tuple[str, str], Count] = {
            (name, way): Count() for name, _, _ in self.channels for way in _DIRECTIONS}
        self._threads: List[threading.Thread] = []
        self._lock = threading.Lock()
        #: Why a direction ended other than cleanly (a reset, an error), by
        #: websocket and direction: for diagnosing a failed migration.
        self.problems: Dict[Tuple[str, str], str] = {}
        self._closed = False

    @property
    def carried(self) -> int:
        """Payload bytes carried so far, all websockets, both ways."""
        return sum(count.bytes for count in self._counts.values())

    def counts(self) -> Dict[Tuple[str, str], Count]:
        """``{(websocket, 'source→target'|'target→source'): Count}``, a snapshot."""
        with self._lock:
            return {key: Count(count.frames, count.bytes) for key, count in self._counts.items()}

    def start(self) -> None:
        """Start one thread per websocket and direction."""
        for name, source, target in self.channels:
            for way, reader, writer in ((_DIRECTIONS[0], source, target),
                                        (_DIRECTIONS[1], target, source)):
                thread = threading.Thread(target=self._pump, args=(name, way, reader, writer),
                                          name=f"apitx-relay-{name}-{way}", daemon=True)
                self._threads.append(thread)
                thread.start()

    @property
    def done(self) -> bool:
        """True once every direction of every websocket has ended."""
        return all(not thread.is_alive() for thread in self._threads)

    def close(self, wait: float = 5.0) -> None:
        """End every connection now (a pump blocked reading sees its end),
        wait up to ``wait`` seconds for the pumps, and log the counts."""
        if self._closed:
            return
        self._closed = True
        for _, source, target in self.channels:
            source.abort()
            target.abort()
        for thread in self._threads:
            thread.join(wait)
        for _, source, target in self.channels:
            source.close()
            target.close()
        self._trace_counts()

    # -- one direction ----------------------------------------------------------

    def _pump(self, name: str, way: str, reader: WebSocketConnection,
              writer: WebSocketConnection) -> None:
        count = self._counts[(name, way)]
        sink = writer.relay_socket()
        reading = reader.relay_socket()
        reading.settimeout(None)  # a control websocket is quiet for the whole transfer
        source = _Reader(reading)
        try:
            while True:
                opcode, length = _forward_frame(source, sink)
                with self._lock:
                    count.frames += 1
                    count.bytes += length
                if opcode == _OPCODE_CLOSE:
                    return  # nothing may follow a close frame: this way is done
        except _Ended as ended:
            if ended.reason and not self._closed:
                self.problems[(name, way)] = ended.reason
            if ended.midway:
                # Half a frame went out: nothing sensible can follow it.
                writer.abort()
                return
            # The reader's server left without a close frame: say so to the
            # writer's, which may otherwise wait on this websocket forever.
            try:
                sink.sendall(_frame(_OPCODE_CLOSE, _GOING_AWAY))
            except OSError:
                pass  # that one is gone too
        except OSError as exc:  # the writer's server left, or the network broke
            if not self._closed:
                self.problems[(name, way)] = f"writing: {exc}"

    def _trace_counts(self) -> None:
        if not logger.isEnabledFor(logging.DEBUG):
            return
        for name, source, target in self.channels:
            if not (source.traced or target.traced):
                continue
            ways = "; ".join(f"{way} {count.frames} frames, {count.bytes} bytes"
                             for (channel, way), count in self.counts().items()
                             if channel == name)
            logger.debug("apitx: relayed websocket %s between %s and %s: %s", name,
                         source.endpoint, target.endpoint, ways)


def _forward_frame(source: _Reader, sink: socket.socket) -> Tuple[int, int]:
    """Read one frame from ``source`` and write it to ``sink``, masked with a
    fresh key, its payload in pieces of at most :data:`CHUNK` bytes; return
    its opcode and payload length. Raises :class:`_Ended` when ``source`` has
    ended before a frame starts or midway."""
    first, second = source.exact(2)
    length = second & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", source.exact(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", source.exact(8))
    incoming = source.exact(4) if second & 0x80 else b"\0\0\0\0"
    outgoing = os.urandom(4)
    # One key undoes the incoming mask and applies the outgoing one.
    key = bytes(a ^ b for a, b in zip(incoming, outgoing))
    out = _header(first, length, outgoing)  # sent with the first piece: one write
    done = 0
    while done < length:
        try:
            piece = source.some(length - done)
        except _Ended as ended:
            ended.midway = done > 0  # part of the frame went out already
            raise
        sink.sendall(out + _xor(piece, key, done))
        out = b""
        done += len(piece)
    if out:
        sink.sendall(out)
    return first & 0x0F, length


class _Reader:
    """A socket read :data:`CHUNK` bytes at a time, handed out as frames need
    it: one ``recv`` serves many small frames and headers (LXD sends frames
    of ~15 KiB, each with a 4-byte header), and no more than a chunk is ever
    held."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.data = b""
        self.at = 0

    def _fill(self) -> None:
        try:
            piece = self.sock.recv(CHUNK)
        except OSError as exc:
            raise _Ended(f"reading: {exc}") from exc
        if not piece:
            raise _Ended("")  # EOF: the usual end of LXD's fs websocket
        self.data = self.data[self.at:] + piece
        self.at = 0

    def exact(self, size: int) -> bytes:
        """The next ``size`` bytes (a header's: a few)."""
        while len(self.data) - self.at < size:
            self._fill()
        self.at += size
        return self.data[self.at - size:self.at]

    def some(self, most: int) -> bytes:
        """What is there of the next ``most`` bytes (at least one)."""
        if self.at == len(self.data):
            self._fill()
        piece = self.data[self.at:self.at + most]
        self.at += len(piece)
        return piece


def _header(first: int, length: int, key: bytes) -> bytes:
    """A masked frame's header: its first byte (FIN, opcode) as given."""
    if length < 126:
        size = bytes((0x80 | length,))
    elif length < 1 << 16:
        size = bytes((0x80 | 126,)) + struct.pack("!H", length)
    else:
        size = bytes((0x80 | 127,)) + struct.pack("!Q", length)
    return bytes((first,)) + size + key


def _frame(opcode: int, payload: bytes) -> bytes:
    """One whole masked frame of our own (FIN set)."""
    key = os.urandom(4)
    return _header(0x80 | opcode, len(payload), key) + _xor(payload, key, 0)


def _xor(data: bytes, key: bytes, offset: int) -> bytes:
    """``data`` XOR the 4-byte ``key`` repeated, starting at byte ``offset``
    of the frame's payload.

    Every fourth byte meets the same key byte: each of the four lanes is one
    ``translate`` through that key byte's table, C loops over bytes. For
    LXD's 15 KiB frames that takes 17 us, against 28-38 us for one big-int
    XOR (measured), whose conversions from and to bytes are most of it; it
    is the relay's largest cost in Python.
    """
    out = bytearray(data)
    tables = _xor_tables()
    for lane in range(4):  # a lane past the end is empty: nothing to do
        out[lane::4] = out[lane::4].translate(tables[key[(offset + lane) % 4]])
    return bytes(out)


@functools.lru_cache(maxsize=1)
def _xor_tables() -> Tuple[bytes, ...]:
    """For each byte value ``k``, the translation table of ``x -> x ^ k``
    (64 KiB in all, built at the first relay: ~3 ms)."""
    return tuple(bytes(value ^ k for value in range(256)) for k in range(256))
