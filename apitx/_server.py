"""Which server an API talks to: LXD or Incus, its version and API extensions.

LXD and Incus (the community fork) speak the same REST API, but not quite the
same dialect: Incus reads the file API's ``X-Incus-*`` headers where LXD reads
``X-LXD-*``, names some API extensions differently (``devlxd_events`` ⇄
``dev_incus_events``) and words its errors its own way. A :class:`Server` is
what ``GET /1.0`` says about that, read once (``api.server``) and frozen, so
the code that speaks a dialect asks it instead of guessing from a socket path.

This module is pure (no I/O): :class:`~apitx.API` fetches ``GET /1.0`` and
caches the value; this module only reads it.

>>> from apitx import API
>>> from apitx._server import Server
>>> incus = API.factory('/var/lib/incus/unix.socket')
>>> server = Server.from_metadata(incus.get('/1.0').metadata)   # what incus.server holds
>>> server.name, server.version, server.header_prefix
('incus', '6.0.4', 'X-Incus-')
>>> server.missing(['instance_bulk_state_change', 'devlxd_events'])  # Incus: dev_incus_events
('devlxd_events',)
>>> print(API.factory().server)
lxd 5.0.2 (API 1.0)
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Dict, FrozenSet, Iterable, Optional, Tuple

from ._exceptions import RequestTypeError
from ._value import Value

#: Extensions only one family has: when ``environment`` is hidden (an untrusted
#: HTTPS client sees no ``environment.server``), they still tell the two apart.
#: Measured on LXD 5.0.2 and Incus 6.0.4 (docs/servers-findings.md).
_FAMILY_MARKS = (("incus", "dev_incus_events"), ("lxd", "devlxd_events"))


class Server(Value):
    """What a server says about itself in ``GET /1.0``.

    ``name`` is ``environment.server`` (``'lxd'`` or ``'incus'``; guessed from
    family-only extension names when an untrusted client sees no
    ``environment``, and ``''`` when even that fails), ``version`` its
    ``server_version`` (None when hidden), ``api_version`` (``'1.0'``),
    ``api_extensions`` a frozenset, ``auth`` ``'trusted'`` or ``'untrusted'``,
    ``project`` the project the answer was given for (``environment.project``,
    None when hidden).

    >>> Server.from_metadata({'api_version': '1.0', 'environment': {'server': 'lxd'}}).name
    'lxd'
    """

    name: str
    version: Optional[str]
    api_version: str
    api_extensions: FrozenSet[str]
    auth: str
    project: Optional[str]

    def __init__(self, name: str, version: Optional[str], api_version: str,
                 api_extensions: FrozenSet[str], auth: str, project: Optional[str]) -> None:
        self._set(name=name, version=version, api_version=api_version,
                  api_extensions=api_extensions, auth=auth, project=project)

    @classmethod
    def from_metadata(cls, metadata: Any) -> Server:
        """The server described by the ``metadata`` of ``GET /1.0``.

        Anything that is not such a description (a proxy's page parsed to
        None) gives a server with empty fields rather than an exception: the
        request itself has been validated by then.
        """
        data = metadata if isinstance(metadata, dict) else {}
        found = data.get("environment")
        environment: Dict[str, Any] = found if isinstance(found, dict) else {}
        extensions = frozenset(str(e) for e in data.get("api_extensions") or () if e)
        name = str(environment.get("server") or "") or next(
            (family for family, mark in _FAMILY_MARKS if mark in extensions), "")
        return cls(name=name, version=environment.get("server_version") or None,
                   api_version=str(data.get("api_version") or ""),
                   api_extensions=extensions, auth=str(data.get("auth") or ""),
                   project=environment.get("project") or None)

    def has(self, extension: str) -> bool:
        """True when the server announces this API extension."""
        return _named(extension) in self.api_extensions

    def missing(self, extensions: Iterable[str]) -> Tuple[str, ...]:
        """The extensions of ``extensions`` this server lacks, in the order given."""
        return tuple(e for e in extensions if _named(e) not in self.api_extensions)

    @property
    def header_prefix(self) -> str:
        """The file API's header family: ``X-Incus-`` on Incus, else ``X-LXD-``.

        Measured here: LXD 5.0.2 ignores ``X-Incus-*`` (a ``type: directory``
        push writes a plain file). Incus 6.0.4 honours both families, but
        issue 9 reports an Incus host that read only ``X-Incus-*``: each
        server gets its own family, and one we cannot name gets LXD's.
        """
        return "X-Incus-" if self.name == "incus" else "X-LXD-"

    def __str__(self) -> str:
        """``incus 6.0.4 (API 1.0)``, as the trace's first line shows it."""
        name = self.name or "an unnamed LXD-style server"
        version = f" {self.version}" if self.version else ""
        return f"{name}{version} (API {self.api_version or '?'})"


class ServerOnce:
    """An API's :class:`Server`, made on first use, once, whichever thread
    asks first (the others wait for it).

    A copy or an unpickled API forgets it and asks its own server again: a
    lock cannot be copied, and the copy may well talk to another daemon.

    >>> from apitx import API
    >>> from apitx._server import Server, ServerOnce
    >>> api, calls = API.factory(), []
    >>> def fetch():
    ...     calls.append('GET /1.0')
    ...     return Server.from_metadata(api.get('/1.0').metadata)
    >>> once = ServerOnce()
    >>> once.get(fetch) is once.get(fetch), calls
    (True, ['GET /1.0'])
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._server: Optional[Server] = None

    def get(self, fetch: Callable[[], Server]) -> Server:
        with self._lock:
            if self._server is None:
                self._server = fetch()
            return self._server

    def __getstate__(self) -> Dict[str, Any]:
        return {}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]


def _named(extension: Any) -> str:
    """An API extension's name, which is a str (a dict was 'unhashable')."""
    if not isinstance(extension, str):
        raise RequestTypeError(f"API extension {extension!r}: give its name as a str, such as "
                               "'instances'")
    return extension
