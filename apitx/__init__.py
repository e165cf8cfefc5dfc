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
"""

from ._api import API
from ._config import Limits, RenderOptions, Timeout, TraceSettings
from ._endpoint import Endpoint
from ._event import Event
from ._events import EventStream, events
from ._exec import ExecControl, ExecResult, run_exec
from ._exceptions import (
    APIConnectionError,
    APIException,
    APINotFoundException,
    APITimeoutError,
    APITXError,
    CertificateMismatch,
    EndpointError,
    ExecError,
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
from ._files import Entry, Files
from ._transports import Pin
from ._remote_add import add_remote
from ._resource import Resource
from ._result import APIResult
from ._server import Server
from ._tracing import StderrHandler
from ._types import USE_DEFAULT
from ._version import __version__
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
    "MigrationError",
    "MissingExtension",
    "OperationTimeout",
    "Pin",
    "RenderOptions",
    "RequestError",
    "RequestTypeError",
    "Resource",
    "ResponseTooLarge",
    "Server",
    "SettingsError",
    "SettingsTypeError",
    "StderrHandler",
    "Timeout",
    "TraceSettings",
    "USE_DEFAULT",
    "__version__",
    "add_remote",
    "ensure",
    "events",
    "migrate",
    "run_exec",
]
