"""LXD's event stream (``/1.0/events``) as an iterator of :class:`Event`.

The stream is a websocket of JSON text messages ``{type, timestamp,
location, project, metadata}`` (LXD 5.0.2 and Incus 6.0, measured here).
Events are sparse by nature, so by default an iteration waits as long as it
takes; ``timeout=`` bounds the wait for each next event instead.

Two endings, told apart on purpose:

- :meth:`EventStream.close` (from any thread) ends the iteration at once,
  even one blocked waiting: it shuts the socket down under it;
- the server dropping the connection raises :class:`APIConnectionError`: a
  watcher that silently stops seeing events is the bug this avoids.

Example::

    with events(api, types=['lifecycle']) as stream:
        for event in stream:
            print(event.type, event.metadata.get('action'))
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Deque, Dict, Iterable, Iterator, Optional

from ._exceptions import APIConnectionError, APITimeoutError
from ._websocket import NO_MESSAGE, Message, WebSocketConnection, open_websocket


@dataclass(frozen=True)
class Event:
    """One event: ``type`` (``lifecycle``, ``operation``, ``logging``), when,
    from which cluster member and project, and what (``metadata``).

    >>> Event.from_json({'type': 'lifecycle', 'metadata': {'action': 'instance-started'}}).type
    'lifecycle'
    """

    type: str
    timestamp: str
    location: str
    project: str
    metadata: Any

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> Event:
        return cls(type=str(data.get("type", "")), timestamp=str(data.get("timestamp", "")),
                   location=str(data.get("location", "")),
                   project=str(data.get("project", "")), metadata=data.get("metadata"))


class EventStream:
    """An iterator of :class:`Event`; a context manager that closes it.

    >>> stream = events(api, types=['operation'])
    >>> threading.Timer(5, stream.close).start()    # stop watching in 5 s
    >>> for event in stream: ...
    """

    def __init__(self, ws: WebSocketConnection) -> None:
        self._ws = ws
        self._lock = threading.Lock()
        self._reading = False
        self._closed = False
        self._timeout: Optional[float] = None
        #: Messages read by :meth:`confirm` before the ping it waited for.
        self._early: Deque[Message] = deque()

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        with self._lock:
            if self._closed:
                return self._stop()
            self._reading = True
        try:
            message = self._early.popleft() if self._early else self._ws.recv()
        except APIConnectionError as exc:
            if self._closed:
                return self._stop()
            raise self._dropped() from exc
        finally:
            with self._lock:
                self._reading = False
        if self._closed:
            return self._stop()
        if message is None:
            raise self._dropped()
        try:
            data = json.loads(message)
            if not isinstance(data, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            raise APIConnectionError(
                f"events {self._ws.describe}: a message is not a JSON event ({exc}): "
                "is this endpoint an LXD-style API?", endpoint=self._ws.endpoint) from exc
        return Event.from_json(data)

    def _stop(self) -> Event:
        self._ws.close()
        raise StopIteration

    def _dropped(self) -> APIConnectionError:
        return APIConnectionError(
            f"events {self._ws.describe}: the server dropped the event stream; "
            "events may have been missed: open a new stream and read the state back",
            endpoint=self._ws.endpoint)

    def confirm(self, timeout: float) -> bool:
        """Wait until the server sends events to this stream; False if it
        does not say so within ``timeout`` seconds.

        LXD answers the upgrade before it registers the stream's listener,
        and registers it before its first keepalive ping (lxd/events:
        ``AddListener``; Incus alike): an event sent in between is never
        delivered. Whoever checks a state and then relies on the stream for
        what follows must wait for that ping first. Events read meanwhile
        are kept for iteration.

        >>> stream = events(api, types=['operation'])
        >>> stream.confirm(5.0) and api.get(op).running   # no later update can be missed
        """
        until = time.monotonic() + timeout
        try:
            while self._ws.pings == 0:
                left = until - time.monotonic()
                if left <= 0:
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

        >>> stream.settimeout(1.0)      # next(stream) raises APITimeoutError after 1 s
        """
        self._timeout = seconds
        self._ws.settimeout(seconds)

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


def events(api: Any, types: Optional[Iterable[str]] = None, project: Optional[str] = None,
           all_projects: bool = False, timeout: Optional[float] = None) -> EventStream:
    """Open ``/1.0/events``; iterate the result for :class:`Event` values.

    ``types`` filters by type (``lifecycle``, ``operation``, ``logging``; None:
    all the server sends); ``project`` or ``all_projects=True`` picks projects;
    ``timeout`` is the longest wait for the next event (then
    :class:`APITimeoutError`; None: no limit, as events may be rare). Connecting
    uses the API's timeouts.

    >>> for event in events(api, types=['lifecycle'], all_projects=True): ...
    """
    params: Dict[str, str] = {}
    if types is not None:
        params["type"] = ",".join([types] if isinstance(types, str) else types)
    if project is not None:
        params["project"] = project
    if all_projects:
        params["all-projects"] = "true"
    stream = EventStream(open_websocket(api, "events", params=params))
    stream.settimeout(timeout)
    return stream
