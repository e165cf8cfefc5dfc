"""apitx: a small, honest client for LXD and LXD-style JSON HTTP APIs.

Talks to a Unix socket or HTTPS, returns results that know LXD's envelope,
raises exceptions that carry the server's own message, and waits on
operations without ever mistaking a running one for a finished one.

>>> from apitx import API
>>> api = API.factory()                           # the local LXD
>>> api.post('instances', json={'name': c2, 'source': {'type': 'image',
...          'alias': 'apitx-busybox'}}).wait().metadata['status']
'Success'
>>> api.instances[c2].get().metadata['status']
'Stopped'

Navigation: ``api.instances['c1'].state.put(...)`` (see :class:`Resource`);
idempotent helpers live in :mod:`apitx.ensure`; copies and moves between
servers, and backups, in :mod:`apitx.migrate`; unit tests without a server
use :class:`apitx.testing.MockTransport`.

Every public name is importable from here; the modules behind it are private.
The ``apitx`` command (:mod:`apitx.cli`) is built on these names alone.
"""

from typing import TYPE_CHECKING, List

from ._exceptions import (
    APIConnectionError,
    APIException,
    APINotFoundException,
    APITimeoutError,
    APITXError,
    CertificateMismatch,
    EndpointError,
    ExecError,
    LocalFileError,
    ExecTimeout,
    MigrationError,
    MissingExtension,
    OperationTimeout,
    RequestError,
    RequestTypeError,
    ResponseTooLarge,
    SettingsError,
    SettingsTypeError,
    Signalled,
)
from ._lazy import LazyExports
from ._types import USE_DEFAULT
from ._version import __version__

# The exceptions above are imported at once (``except apitx.APITXError``
# must work before anything else is used, and they cost nothing); every
# other name is imported the first time it is looked up, so that a program
# sending one request never imports websockets, exec, remotes' YAML or
# migrations (issue 19: ``import apitx`` cost twice ``import requests``).
# The table is the single list of where each name lives; the imports under
# TYPE_CHECKING say the same to type checkers and the docs.
_exports = LazyExports(__name__, {
    "._api": ("API",),
    "._atomic": ("atomic_write",),
    "._config": ("Limits", "RenderOptions", "Timeout", "TraceSettings"),
    "._endpoint": ("Endpoint",),
    "._event": ("Event",),
    "._events": ("EventStream", "events"),
    "._exec": ("ExecControl", "ExecResult", "run_exec"),
    "._exec_kill": ("raising_on",),
    "._file_api": ("Entry",),
    "._files": ("Files",),
    "._transports": ("Pin",),
    "._remote_add": ("add_remote",),
    "._remotes": ("RemoteSettings", "list_remotes", "remove_remote"),
    "._resource": ("Resource",),
    "._result": ("APIResult",),
    "._server": ("Server",),
    "._tracing": ("StderrHandler",),
    ".ensure": None,   # apitx.ensure: idempotent helpers
    ".migrate": None,  # apitx.migrate: workloads between servers
})

#: The async client's names: imported on first use too, and never by the
#: others, so that ``import apitx`` never imports aiohttp (``pip install
#: apitx[async]`` brings it); without it, the error says so.
_ASYNC_NAMES = ("AsyncAPI", "AsyncAPIResult", "AsyncEventStream", "AsyncExecControl")

# Type checkers see the names here, and only these: a misspelt name is an
# error, not an ``object`` from ``__getattr__``.
if TYPE_CHECKING:
    from . import ensure, migrate
    # Not in __all__ (``import *`` would import aiohttp): re-exported by name.
    from ._aio import AsyncAPI as AsyncAPI
    from ._aio import AsyncAPIResult as AsyncAPIResult
    from ._aio import AsyncEventStream as AsyncEventStream
    from ._aio import AsyncExecControl as AsyncExecControl
    from ._api import API
    from ._atomic import atomic_write
    from ._config import Limits, RenderOptions, Timeout, TraceSettings
    from ._endpoint import Endpoint
    from ._event import Event
    from ._events import EventStream, events
    from ._exec import ExecControl, ExecResult, run_exec
    from ._exec_kill import raising_on
    from ._file_api import Entry
    from ._files import Files
    from ._remote_add import add_remote
    from ._remotes import RemoteSettings, list_remotes, remove_remote
    from ._resource import Resource
    from ._result import APIResult
    from ._server import Server
    from ._tracing import StderrHandler
    from ._transports import Pin
else:
    def __getattr__(name: str) -> object:
        if name in _ASYNC_NAMES:
            try:
                from . import _aio
            except ImportError as exc:
                raise ImportError(f"apitx.{name} needs aiohttp: pip install 'apitx[async]' "
                                  f"({exc})") from exc
            return getattr(_aio, name)
        return _exports.attribute(name)

    def __dir__() -> List[str]:
        return _exports.names()

__all__ = [
    "API",
    "APIConnectionError",
    "APIException",
    "APINotFoundException",
    "APIResult",
    "APITimeoutError",
    "APITXError",
    "CertificateMismatch",
    "Endpoint",
    "EndpointError",
    "Entry",
    "Event",
    "EventStream",
    "ExecControl",
    "ExecError",
    "ExecResult",
    "ExecTimeout",
    "Files",
    "Limits",
    "LocalFileError",
    "MigrationError",
    "MissingExtension",
    "OperationTimeout",
    "Pin",
    "RemoteSettings",
    "RenderOptions",
    "RequestError",
    "RequestTypeError",
    "Resource",
    "ResponseTooLarge",
    "Server",
    "SettingsError",
    "SettingsTypeError",
    "Signalled",
    "StderrHandler",
    "Timeout",
    "TraceSettings",
    "USE_DEFAULT",
    "__version__",
    "add_remote",
    "atomic_write",
    "ensure",
    "events",
    "list_remotes",
    "migrate",
    "raising_on",
    "remove_remote",
    "run_exec",
]
