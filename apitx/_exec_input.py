"""An exec's stdin: read the caller's source in a thread, send it, never hang.

:class:`StdinWriter` reads what ``run_exec(stdin=...)`` was given (bytes,
str, a file object, or an iterable of pieces) and sends it over the exec's
stream 0 in messages of at most :data:`STDIN_CHUNK` bytes, then a close
frame (LXD's end of input). It is a thread because sending must not wait for
reading: a command such as ``cat`` stops reading its input while its output
is not read, so one thread doing both could deadlock with it.

Three rules, each from a way an exec used to hang or lose input:

- a source that is not ready is not at its end: a non-blocking file whose
  ``read()`` returns None, raises ``BlockingIOError`` or (``read1()`` of a
  buffered file) returns ``b''`` is waited on with ``selectors`` until it is
  readable, then read again; only an empty read after that is its end. A
  raw file (the CLI's stdin) is always waited on that way, so the thread is
  never stuck in a read once the command ended;
- a source that fails (a closed file, a ``read()`` that raises, a generator
  that raises) wakes the reading loop at once through :attr:`failed`, which
  raises :meth:`failure` in the caller: the command is then killed, not
  given an end of input, so it never takes part of its input for the whole;
- a send that fails is not the source's failure: LXD stops reading stdin
  when the command ends (or closes its input), and a dropped connection
  shows on the output streams.

A failing source, seen from ``exec``:

>>> from apitx import API
>>> def lines():
...     yield b'one\\n'
...     raise OSError('disk gone')
>>> API.factory().exec(c1, ['cat'], stdin=lines())
Traceback (most recent call last):
  ...
apitx.RequestError: stdin=<generator object lines at 0x...>: reading it failed after 4 bytes were sent (OSError: disk gone); the command was killed rather than given an end of input it would take for the whole
"""

from __future__ import annotations

import io
import os
import selectors
import socket
import threading
from typing import IO, Any, Callable, Iterable, Iterator, Optional, Set, Union

from ._exceptions import APIConnectionError, APITimeoutError, RequestError, RequestTypeError
from ._transports import WebSocketConnection

#: Bytes per stdin message. Measured here (50 MiB into sha256sum, LXD 5.0.2):
#: 32 KiB ~95-115 MB/s, 64 KiB ~115-133, 128 KiB ~110, 1 MiB ~94, 4 MiB ~70:
#: large messages stall in LXD's copy to the command's pipe.
STDIN_CHUNK = 1 << 16

#: What ``stdin=`` takes: bytes, text, a file object, or an iterable of
#: pieces (bytes or text), or None for no input.
Input = Union[None, bytes, str, IO[bytes], IO[str], Iterable[Union[bytes, str]]]


def check_stdin(stdin: Any) -> None:
    """Refuse, before anything is sent, a ``stdin=`` that cannot be read.

    >>> check_stdin(b'data')
    """
    if stdin is None or isinstance(stdin, (bytes, bytearray, memoryview, str)):
        return
    if callable(getattr(stdin, "read", None)):
        if getattr(stdin, "closed", False) is True:
            raise RequestError(f"stdin={stdin!r} is closed: give an open file; nothing was sent")
        return
    if callable(getattr(stdin, "__iter__", None)):
        return
    raise RequestTypeError(f"stdin={stdin!r}: give bytes, str, a file object opened for "
                           "reading, an iterable of bytes, or None for no input; nothing was "
                           "sent")


class Wakeup:
    """A flag ``selectors`` can wait on, set from any thread (a socket pair).

    >>> import selectors
    >>> from apitx._exec_input import Wakeup
    >>> flag = Wakeup()
    >>> selector = selectors.DefaultSelector()
    >>> key = selector.register(flag, selectors.EVENT_READ)
    >>> selector.select(timeout=0)
    []
    >>> flag.set()
    >>> [key.fileobj is flag for key, events in selector.select(timeout=0)]
    [True]
    >>> flag.close()
    """

    def __init__(self) -> None:
        self._reader, self._writer = socket.socketpair()
        self._writer.setblocking(False)
        self._set = threading.Event()

    def fileno(self) -> int:
        return self._reader.fileno()

    def set(self) -> None:
        self._set.set()
        try:
            self._writer.send(b"!")
        except OSError:
            pass  # set already (the pair is full) or closed: either way it is set

    def is_set(self) -> bool:
        return self._set.is_set()

    def close(self) -> None:
        self._reader.close()
        self._writer.close()


class Stopped(Exception):
    """The command ended while the reader waited for input."""


class SourceReader:
    """The pieces of a ``stdin=`` source, as they come: bytes and text cut in
    :data:`STDIN_CHUNK` pieces, an iterable's pieces, a file read as it is
    ready (``stop``, once set, ends a wait for a file that is not).
    Blocking: the sync client reads it in its stdin thread, the async one
    in a worker thread, a piece at a time.

    >>> list(SourceReader(b'abc', Wakeup()).pieces())
    [b'abc']
    """

    def __init__(self, source: Input, stop: Wakeup) -> None:
        self.source = source
        self.stop = stop

    def pieces(self) -> Iterator[bytes]:
        source: Any = self.source
        if source is None:
            return
        if isinstance(source, str):
            source = source.encode("utf-8")
        if isinstance(source, (bytes, bytearray, memoryview)):
            view = memoryview(source).cast("B")
            for start in range(0, len(view), STDIN_CHUNK):
                yield bytes(view[start:start + STDIN_CHUNK])
            return
        if not callable(getattr(source, "read", None)):
            for piece in source:
                if piece:
                    yield as_bytes(piece)
            return
        # read1() returns what is there as soon as there is some: a pipe that
        # trickles is passed on live, not when 64 KiB have gathered.
        read: Callable[[int], Any] = getattr(source, "read1", source.read)
        fd = _fileno(source)
        # Not ready is not the end: a non-blocking read() says None (a raw
        # file) or raises BlockingIOError, and read1() of a buffered one even
        # says b'' then, so an empty read ends the input only once select()
        # said the file was readable. A raw file has no buffer select() cannot
        # see: it is waited on before each read, so the thread is never stuck
        # in a read once the command ended.
        nonblocking = fd is not None and not _blocking(fd)
        raw = fd is not None and isinstance(source, io.RawIOBase)
        ready = False
        while True:
            if raw and not ready and fd is not None:
                self._wait_for(fd)
                ready = True
            try:
                chunk = read(STDIN_CHUNK)
            except BlockingIOError:
                chunk = None
            if chunk is None or (not chunk and nonblocking and not ready):
                if fd is None:
                    raise RequestTypeError("read() returned None (a non-blocking source with "
                                           "nothing to read yet), and it has no fileno() to "
                                           "wait on: give a blocking file object, bytes, or "
                                           "an iterable")
                self._wait_for(fd)
                ready = True
                continue
            if not chunk:
                return
            ready = False
            yield as_bytes(chunk)

    def _wait_for(self, fd: int) -> None:
        """Until ``fd`` is readable; raises :class:`_Stopped` once the command ended."""
        with selectors.DefaultSelector() as selector:
            try:
                selector.register(fd, selectors.EVENT_READ)
            except PermissionError:
                return  # epoll cannot watch it (a regular file, /dev/null): always readable
            selector.register(self.stop, selectors.EVENT_READ)
            selector.select()
        if self.stop.is_set():
            raise Stopped()




class StdinWriter(threading.Thread):
    """Sends ``source`` over ``ws``, then a close frame when ``close_at_eof``.

    ``stop`` is set by the caller once the command ended (the writer then
    stops waiting for input); ``failed`` is set by the writer when reading
    the source failed (``error`` holds why). The caller hands ``ws`` and both
    flags back with :meth:`release` instead of closing them: see there.
    """

    def __init__(self, ws: WebSocketConnection, source: Input, close_at_eof: bool) -> None:
        super().__init__(name="apitx-exec-stdin", daemon=True)
        self.ws = ws
        self.source = source
        self.close_at_eof = close_at_eof
        self.stop = Wakeup()
        self.failed = Wakeup()
        self.error: Optional[BaseException] = None
        #: Bytes sent so far.
        self.sent = 0
        #: Who is done with the sockets: "thread", "caller" (see release()).
        self._lock = threading.Lock()
        self._done_with: Set[str] = set()

    def run(self) -> None:
        try:
            self._send_all()
        finally:
            self._done("thread")

    def release(self) -> None:
        """The caller is done with ``ws`` and the flags: they are closed now if
        the thread is done too, else by the thread as it ends.

        Closing a socket another thread is still writing to frees its file
        descriptor for the next socket opened, and the write lands there:
        under 64 threads over HTTPS an exec's stdin close frame once ended up
        in another thread's TLS handshake (which LXD refused: bad record MAC).
        A thread stuck reading a blocking source keeps its socket (shut down,
        so it carries nothing) until it ends.
        """
        self.stop.set()
        self._done("caller")

    def _done(self, who: str) -> None:
        """``who`` no longer uses the sockets; the second of the two closes them."""
        with self._lock:
            self._done_with.add(who)
            last = len(self._done_with) == 2
        if last:
            self.ws.close()
            self.stop.close()
            self.failed.close()

    def _send_all(self) -> None:
        pieces = SourceReader(self.source, self.stop).pieces()
        while True:
            try:
                piece = next(pieces, None)
            except Stopped:
                return
            except BaseException as exc:  # the caller's source: raised in the caller
                self.error = exc
                self.failed.set()
                return
            try:
                if piece is None:
                    if self.close_at_eof:
                        self.ws.send_close()
                    return
                self.ws.send_binary(piece)
                self.sent += len(piece)
            except (APIConnectionError, APITimeoutError):
                return  # LXD stopped reading stdin: see the module's docstring

    def failure(self) -> RequestError:
        """The source's failure, to raise in the caller (who kills the command)."""
        return source_failed(self.source, self.sent, self.error)

def source_failed(source: Any, sent: int, error: Optional[BaseException]) -> RequestError:
    """The error of a ``stdin=`` source that failed after ``sent`` bytes."""
    return RequestError(f"stdin={source!r}: reading it failed after {sent} bytes were sent "
                        f"({type(error).__name__}: {error}); the command was killed rather "
                        "than given an end of input it would take for the whole")


def _blocking(fd: int) -> bool:
    try:
        return os.get_blocking(fd)
    except OSError:
        return True  # a read will say what is wrong


def _fileno(source: Any) -> Optional[int]:
    try:
        fd = source.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        return None
    return fd if isinstance(fd, int) else None


def as_bytes(piece: Union[bytes, str, Any]) -> bytes:
    """A piece read from a source: text is sent as UTF-8."""
    if isinstance(piece, str):
        return piece.encode("utf-8")
    if isinstance(piece, (bytes, bytearray, memoryview)):
        return bytes(piece)
    raise RequestTypeError(f"stdin gave {type(piece).__name__} {piece!r:.60}: give bytes or "
                           "str pieces")
