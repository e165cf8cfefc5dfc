"""apitx: a small, honest client for LXD and LXD-style JSON HTTP APIs.

Talks to a Unix socket or HTTPS, returns results that know LXD's envelope,
raises exceptions that carry the server's own message, and waits on
operations without ever mistaking a running one for a finished one.

Example::

    from apitx import API
    api = API.factory()                           # the local LXD
    api.post('instances', json={'name': 'c1', 'source': {'type': 'image',
             'alias': 'apitx-busybox'}}).wait()

Navigation: ``api.instances['c1'].state.put(...)`` (see :class:`Resource`);
idempotent helpers live in :mod:`apitx.ensure`; copies and moves between
servers, and backups, in :mod:`apitx.migrate`; unit tests without a server
use :class:`apitx.testing.MockTransport`.

Every public name is importable from here; the modules behind it are private.
The ``apitx`` command (:mod:`apitx.cli`) is built on these names alone.
"""

from typing import TYPE_CHECKING

from ._api import API
from ._atomic import atomic_write
from ._config import Limits, RenderOptions, Timeout, TraceSettings
from ._endpoint import Endpoint
from ._event import Event
from ._events import EventStream, events
from ._exec import ExecControl, ExecResult, run_exec
from ._exec_kill import Signalled, raising_on
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
)
from ._file_api import Entry
from ._files import Files
from ._transports import Pin
from ._remote_add import add_remote
from ._remotes import RemoteSettings, list_remotes, remove_remote
from ._resource import Resource
from ._result import APIResult
from ._server import Server
from ._tracing import StderrHandler
from ._types import USE_DEFAULT
from ._version import __version__

#: The async client's names: imported on first use, so that ``import apitx``
#: never imports aiohttp (``pip install apitx[async]`` brings it). Type
#: checkers read them from the import below, which never runs.
if TYPE_CHECKING:
    from ._aio import AsyncAPI as AsyncAPI, AsyncAPIResult as AsyncAPIResult
    from ._aio import AsyncEventStream as AsyncEventStream, AsyncExecControl as AsyncExecControl

_ASYNC_NAMES = ("AsyncAPI", "AsyncAPIResult", "AsyncEventStream", "AsyncExecControl")


def __getattr__(name: str) -> object:
    if name in _ASYNC_NAMES:
        try:
            from . import _aio
        except ImportError as exc:
            raise ImportError(f"apitx.{name} needs aiohttp: pip install 'apitx[async]' "
                              f"({exc})") from exc
        return getattr(_aio, name)
    raise AttributeError(f"module 'apitx' has no attribute {name!r}")
from . import ensure  # noqa: E402  (apitx.ensure: idempotent helpers)
from . import migrate  # noqa: E402  (apitx.migrate: workloads between servers)

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
