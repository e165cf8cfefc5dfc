"""One event of LXD's stream (``/1.0/events``), as a value: no I/O.

The stream is a websocket of JSON text messages ``{type, timestamp,
location, project, metadata}`` (LXD 5.0.2 and Incus 6.0, measured here);
both clients' streams and the waiting engine read them through here.

>>> from apitx import Event
>>> Event.parse('{"type": "lifecycle", "metadata": {"action": "instance-started"}}').type
'lifecycle'
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Dict, Iterable, Optional

from ._exceptions import APIConnectionError, RequestError, RequestTypeError


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
        """The event a decoded message describes."""
        return cls(type=str(data.get("type", "")), timestamp=str(data.get("timestamp", "")),
                   location=str(data.get("location", "")),
                   project=str(data.get("project", "")), metadata=data.get("metadata"))

    @classmethod
    def parse(cls, message: Any) -> Event:
        """The event a websocket message (str or bytes) carries;
        :class:`~apitx.RequestError` (a ValueError) when it carries none."""
        if not isinstance(message, (str, bytes, bytearray)):
            raise RequestTypeError(f"Event.parse({message!r}): give the text of a message")
        try:
            data = json.loads(message)
        except ValueError as exc:  # not JSON, or not UTF-8
            raise RequestError(f"not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise RequestError("not a JSON object")
        return cls.from_json(data)


def event_params(types: Optional[Iterable[str]], project: Optional[str],
                 all_projects: bool) -> Dict[str, str]:
    """The query of ``/1.0/events`` for these choices.

    >>> event_params(['operation'], None, True)
    {'type': 'operation', 'all-projects': 'true'}
    """
    params: Dict[str, str] = {}
    if types is not None:
        listed = [types] if isinstance(types, str) else \
            list(types) if isinstance(types, Iterable) and not isinstance(types, bytes) else None
        if listed is None or not all(isinstance(kind, str) for kind in listed):
            raise RequestTypeError(f"events(types={types!r}): give event types as strs, such "
                                   "as ['lifecycle', 'operation']; nothing was sent")
        params["type"] = ",".join(listed)
    if project is not None:
        if not isinstance(project, str):
            raise RequestTypeError(f"events(project={project!r}): give a project name; "
                                   "nothing was sent")
        params["project"] = project
    if all_projects:
        params["all-projects"] = "true"
    return params


def dropped(describe: str, endpoint: str) -> APIConnectionError:
    """What a stream the server dropped raises (both clients)."""
    return APIConnectionError(
        f"events {describe}: the server dropped the event stream; events may have been "
        "missed: open a new stream and read the state back", endpoint=endpoint)


def not_an_event(describe: str, endpoint: str, why: Exception) -> APIConnectionError:
    """What a message that is no event raises (both clients)."""
    return APIConnectionError(
        f"events {describe}: a message is not a JSON event ({why}): is this endpoint an "
        "LXD-style API?", endpoint=endpoint)
