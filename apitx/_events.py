"""LXD's event stream (``/1.0/events``) as an iterator of :class:`Event`.

The stream is a websocket of JSON text messages (see :mod:`apitx._event`).
Events are sparse by nature, so by default an iteration waits as long as it
takes; ``timeout=`` bounds the wait for each next event instead. That bound
is a deadline: LXD's keepalive pings, every 10 s, do not extend it.

Two endings, told apart on purpose:

- :meth:`EventStream.close` (from any thread) ends the iteration at once,
  even one blocked waiting: it shuts the socket down under it;
- the server dropping the connection raises :class:`APIConnectionError`: a
  watcher that silently stops seeing events is the bug this avoids.

>>> from apitx import API, events
>>> api = API.factory()
>>> with events(api, types=['lifecycle'], timeout=30) as stream:
...     stream.confirm(5.0)                 # listening: no later event is missed
...     api.exec(c1, ['true']).return_code
...     for event in stream:                # other instances' events too: pick c1's
...         if event.metadata['source'] == f'/1.0/instances/{c1}':
...             print(event.type, event.metadata['action'])
...             break
True
0
lifecycle instance-exec
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any, Deque, Iterable, Iterator, NoReturn, Optional

from . import _checks
from ._client import Client
from ._event import Event, dropped, event_params, not_an_event
from ._exceptions import APIConnectionError, APITimeoutError
from ._prepare import finite_seconds
from ._transports import NO_MESSAGE, Message, WebSocketConnection

__all__ = ["Event", "EventStream", "events"]


class EventStream:
    """An iterator of :class:`Event`; a context manager that closes it.

    >>> import threading
    >>> from apitx import API, events
    >>> api = API.factory()
    >>> stream = events(api, types=['operation'])
    >>> threading.Timer(0.5, stream.close).start()    # stop watching in 0.5 s
    >>> for event in stream: pass                     # ends when closed
    >>> stream
    <EventStream unix:/var/lib/lxd/unix.socket /1.0/events?type=operation closed>
    """

    def __init__(self, ws: WebSocketConnection) -> None:
        self._ws = ws
        self._lock = threading.Lock()
        self._reading = False
        self._closed = False
        self._timeout: Optional[float] = None
        #: Messages read by :meth:`confirm` before the ping it waited for.
        self._early: Deque[Message] = deque()

    @property
    def last_frame(self) -> float:
        """When the stream last received anything, keepalive pings included
        (``time.monotonic()``)."""
        return self._ws.last_frame

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        event = self.next_event(self._timeout)
        if event is None:
            raise APITimeoutError(
                f"events {self._ws.describe}: no event in {self._timeout:g}s "
                "(events(timeout=...)); the stream is still open: iterate again to wait more")
        return event

    def next_event(self, timeout: Optional[float]) -> Optional[Event]:
        """The next event, or None when none came within ``timeout`` seconds
        (None: wait as long as it takes). Pings do not extend the wait.
        StopIteration once closed; :class:`APIConnectionError` when dropped."""
        limit = _checks.seconds(timeout, "next_event(timeout)")
        with self._lock:
            if self._closed:
                self._stop()
            self._reading = True
        until = None if limit is None else time.monotonic() + limit
        try:
            message = self._read(until)
        except APIConnectionError as exc:
            if self._closed:
                self._stop()
            raise self._dropped() from exc
        finally:
            with self._lock:
                self._reading = False
        if self._closed:
            self._stop()
        if message is None:
            return None
        try:
            return Event.parse(message)
        except ValueError as exc:
            raise not_an_event(self._ws.describe, self._ws.endpoint, exc) from exc

    def _read(self, until: Optional[float]) -> Optional[Message]:
        """The next message by ``until``, or None; a closed stream is dropped."""
        if self._early:
            return self._early.popleft()
        while True:
            left = None if until is None else until - time.monotonic()
            if left is not None and left <= 0:
                return None
            self._ws.settimeout(left)
            try:
                frame = self._ws.recv_frame()
            except APITimeoutError:
                return None
            if frame is None:
                raise self._dropped()
            if frame is not NO_MESSAGE:
                return frame  # type: ignore[return-value]

    def _stop(self) -> NoReturn:
        self._ws.close()
        raise StopIteration

    def _dropped(self) -> APIConnectionError:
        return dropped(self._ws.describe, self._ws.endpoint)

    def confirm(self, timeout: float) -> bool:
        """Wait until the server sends events to this stream; False if it
        does not say so within ``timeout`` seconds.

        LXD answers the upgrade before it registers the stream's listener,
        and registers it before its first keepalive ping (lxd/events:
        ``AddListener``; Incus alike): an event sent in between is never
        delivered. Whoever checks a state and then relies on the stream for
        what follows must wait for that ping first. Events read meanwhile
        are kept for iteration.

        >>> from apitx import API, events
        >>> api = API.factory()
        >>> with events(api, types=['operation']) as stream:
        ...     stream.confirm(5.0)     # now a state read, then the stream, misses nothing
        True
        """
        limit = _checks.seconds(timeout, "confirm(timeout)", optional=False)
        until = None if limit is None else time.monotonic() + limit
        try:
            while self._ws.pings == 0:
                left = None if until is None else until - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._ws.settimeout(left)
                try:
                    frame = self._ws.recv_frame()
                except APITimeoutError:
                    return False
                except APIConnectionError as exc:
                    raise self._dropped() from exc
                if frame is None:
                    raise self._dropped()
                if frame is not NO_MESSAGE:
                    self._early.append(frame)  # type: ignore[arg-type]
            return True
        finally:
            self._ws.settimeout(self._timeout)

    def settimeout(self, seconds: Optional[float]) -> None:
        """The longest wait for each next event from now on (None: no limit).

        >>> from apitx import API, events
        >>> api = API.factory()
        >>> stream = events(api, types=['lifecycle'])
        >>> stream.settimeout(0.5)
        >>> for event in stream: pass     # until no event comes for 0.5 s
        Traceback (most recent call last):
          ...
        apitx.APITimeoutError: events unix:/var/lib/lxd/unix.socket /1.0/events?type=lifecycle: no event in 0.5s (events(timeout=...)); the stream is still open: iterate again to wait more
        >>> stream.close()
        """
        self._timeout = _checks.seconds(seconds, "settimeout(seconds)")

    def close(self) -> None:
        """End the stream; safe from any thread, and a blocked iteration ends at once."""
        with self._lock:
            self._closed = True
            reading = self._reading
        self._ws.abort()
        if not reading:  # else the reading thread releases the socket as it stops
            self._ws.close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<EventStream {self._ws.describe}{' closed' if self._closed else ''}>"


def events(api: Client, types: Optional[Iterable[str]] = None, project: Optional[str] = None,
           all_projects: bool = False, timeout: Optional[float] = None) -> EventStream:
    """Open ``/1.0/events``; iterate the result for :class:`Event` values.

    ``types`` filters by type (``lifecycle``, ``operation``, ``logging``; None:
    all the server sends); ``project`` or ``all_projects=True`` picks projects;
    ``timeout`` is the longest wait for the next event (then
    :class:`APITimeoutError`; None: no limit, as events may be rare).
    Connecting uses the API's timeouts.

    >>> from apitx import API, events
    >>> api = API.factory()
    >>> with events(api, types=['lifecycle'], all_projects=True, timeout=60) as stream:
    ...     stream
    <EventStream unix:/var/lib/lxd/unix.socket /1.0/events?type=lifecycle&all-projects=true>
    >>> events(api, project='nowhere')
    Traceback (most recent call last):
      ...
    apitx.APIException: GET unix:/var/lib/lxd/unix.socket /1.0/events?project=nowhere: Project not found
    """
    limit = finite_seconds(timeout, "events(timeout=...)")
    stream = EventStream(api.websocket("events", event_params(types, project, all_projects)))
    stream.settimeout(limit)
    return stream
