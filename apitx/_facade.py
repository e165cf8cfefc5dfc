"""What :class:`~apitx.API` and :class:`~apitx.AsyncAPI` share as facades.

Both are thin: a sender sends, an operations engine waits. What is left is
the same for both and written once here: reading the settings (once, when
the API is made), resolving ``API.factory``'s arguments (discovery, remotes,
pins), siblings with other defaults (``using()``), URLs, navigation, and the
words of :class:`~apitx.MissingExtension`.

>>> from apitx._facade import FactoryPlan
>>> FactoryPlan.resolve('local:', cert=None, verify=True, fingerprint=None, project=None)
FactoryPlan(endpoints=(Endpoint(base_url='http+unix://lxd', socket_path='/var/lib/lxd/unix.socket', project=None),), cert=None, project=None, pin=None)
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, Generic, Optional, Sequence, Tuple, TypeVar, Union

from ._config import Limits, Timeout, TimeoutLike, TraceLike, TraceSettings
from ._endpoint import Endpoint
from ._exceptions import EndpointError, MissingExtension, SettingsError, SettingsTypeError
from ._server import Server
from ._transports import FingerprintLike, Pin, pin_for
from ._types import USE_DEFAULT, Cert, UseDefault
from ._value import Value

if TYPE_CHECKING:
    from ._resource import Resource, Segment
    from ._tracing import Tracer

#: The largest answer apitx reads for the caller (JSON, an error's detail),
#: decompressed: LXD's largest answers (recursion=2 listings) are megabytes.
DEFAULT_MAX_ANSWER_BYTES = 64 * 1024 * 1024

#: One endpoint, or the members of a cluster.
EndpointsLike = Union[Endpoint, str, Sequence[Union[Endpoint, str]]]

#: What the verbs of a facade return (an APIResult, or a coroutine of one).
R = TypeVar("R")
#: A facade of either kind (what ``using()`` returns: another of its kind).
FacadeT = TypeVar("FacadeT", bound="Facade[Any]")


def endpoints_of(given: Optional[EndpointsLike]) -> Tuple[Endpoint, ...]:
    """The endpoints an API talks to: one (None and ``'lxd'``/``'incus'``
    discover it), or a cluster's HTTPS members."""
    if given is None or isinstance(given, (str, Endpoint)):
        return (Endpoint.resolve(given),)
    if not isinstance(given, (list, tuple)) or not given:
        raise EndpointError(f"endpoint={given!r}: give one endpoint, or a non-empty list of "
                            "https:// endpoints (a cluster's members)")
    endpoints = tuple(Endpoint.coerce(each) for each in given)
    if len(endpoints) > 1 and any(each.socket_path for each in endpoints):
        raise EndpointError("a list of endpoints is for a cluster's members over HTTPS; a Unix "
                            f"socket reaches one daemon: {', '.join(e.display for e in endpoints)}")
    return endpoints


class FactoryPlan(Value):
    """What ``factory()``'s arguments come to: the endpoints, the client
    certificate, the default project and the pin (None: ordinary trust)."""

    endpoints: Tuple[Endpoint, ...]
    cert: Cert
    project: Optional[str]
    pin: Optional[Pin]

    def __init__(self, endpoints: Tuple[Endpoint, ...], cert: Cert, project: Optional[str],
                 pin: Optional[Pin]) -> None:
        self._set(endpoints=endpoints, cert=cert, project=project, pin=pin)

    @classmethod
    def resolve(cls, endpoint: Optional[EndpointsLike], *, cert: Cert,
                verify: Union[bool, str], fingerprint: FingerprintLike,
                project: Optional[str], mock: bool = False) -> FactoryPlan:
        """Discovery, a ``'name:'`` remote's settings, Incus's per-user
        project, and the pin ``verify=``/``fingerprint=`` ask for. A mock
        transport needs none of them (its endpoint defaults to
        ``https://lxd.test:8443``)."""
        # The mock and the remotes (their YAML, their files) are imported only
        # for the calls that use them: a plain request pays for neither (issue 19).
        if mock:
            from ._transports import MOCK_ENDPOINT

            return cls(endpoints_of(MOCK_ENDPOINT if endpoint is None else endpoint), cert,
                       project, None)
        if isinstance(endpoint, str) and endpoint.endswith(":"):  # a remote is 'name:'
            from ._remotes import apply_remote

            endpoint, cert, fingerprint, project = apply_remote(endpoint, cert, verify,
                                                                fingerprint, project)
        resolved = endpoints_of(endpoint)
        if project is None:
            # Incus's per-user socket serves one project, user-<uid>: make
            # it the default, or every request would need project= by hand.
            project = resolved[0].project
        return cls(resolved, cert, project, pin_for(verify, fingerprint))


class Facade(Generic[R]):
    """The settings, defaults, siblings, URLs and navigation of an API."""

    _sender: Any  # the API's sender (sync or async): set by the API

    def _settle(self, endpoint: EndpointsLike, *, default_version: Optional[str],
                debug: bool, timeout: TimeoutLike, trace: TraceLike, max_answer_bytes: int,
                project: Optional[str], target: Optional[str],
                limits: Optional[Limits]) -> None:
        """Read and check the settings, once, when the API is made."""
        #: Every endpoint the API may talk to; ``endpoint`` is the one in use.
        self.endpoints = endpoints_of(endpoint)
        #: Added to every request's query unless it names them.
        self.project = project
        self.target = target
        if isinstance(max_answer_bytes, bool) or not isinstance(max_answer_bytes, int) \
                or max_answer_bytes <= 0:
            raise SettingsError(f"max_answer_bytes={max_answer_bytes!r}: give a positive "
                                f"number of bytes (default {DEFAULT_MAX_ANSWER_BYTES})")
        #: The largest JSON answer or error detail read, decompressed.
        self.max_answer_bytes = max_answer_bytes
        if default_version is not None and not isinstance(default_version, str):
            raise SettingsTypeError(f"default_version={default_version!r}: give the API "
                                    "version prefix as a str ('1.0'), or None for none")
        self.default_version = default_version.strip("/") if default_version else None
        self.timeout = Timeout.coerce(timeout)
        #: How this API traces and renders: read once, here.
        self.trace = TraceSettings.coerce(trace, debug=debug)
        self.render_options = self.trace.render
        self.debug = self.trace.enabled
        self.limits = Limits.coerce(limits)

    @property
    def endpoint(self) -> Endpoint:
        """The endpoint requests go to now: the first of a cluster's members
        that answered (the one given, for a single server)."""
        endpoint: Endpoint = self._sender.endpoint
        return endpoint

    @property
    def tracer(self) -> Optional[Tracer]:
        """The tracer of this API's transactions, or None when tracing is off."""
        tracer: Optional[Tracer] = self._sender.tracer
        return tracer

    def url(self, url: str) -> str:
        """The full URL for an API path.

        ``''`` and ``'/'`` mean the version root (``/1.0``, never ``/1.0/``,
        which LXD answers 404); ``'instances'`` is relative to it; a path
        starting with ``/`` (such as the operation URLs LXD returns) is used
        as it is.
        """
        url_: str = self._sender.url(url)
        return url_

    def using(self: FacadeT, *, project: Union[Optional[str], UseDefault] = USE_DEFAULT,
              target: Union[Optional[str], UseDefault] = USE_DEFAULT) -> FacadeT:
        """A sibling API on the same connections with other defaults (None: none).

        >>> from apitx import API
        >>> api = API.factory()
        >>> web = api.using(project='default', target=None)
        >>> web.project, api.project
        ('default', None)
        >>> web.get(f'instances/{c1}').response.request.url      # project= on each request
        'http+unix://lxd/1.0/instances/apitx-...?project=default'
        """
        sibling = copy.copy(self)
        if not isinstance(project, UseDefault):
            sibling.project = project
        if not isinstance(target, UseDefault):
            sibling.target = target
        return sibling

    def _missing(self, server: Server, names: Sequence[str]) -> Optional[MissingExtension]:
        """:meth:`require`'s failure, or None when the server has every extension."""
        missing = server.missing(names)
        if not missing:
            return None
        return MissingExtension(
            f"{server} at {self.endpoint.display} lacks API extension"
            f"{'s' if len(missing) > 1 else ''} {', '.join(missing)}: this needs a newer "
            f"{server.name or 'server'}, or a way that does without "
            f"(api.has_extension() tells which)", server=server.name,
            version=server.version, missing=missing)

    # -- navigation (rules and reasons in _resource.py) ------------------------

    def _root(self) -> Resource[R]:
        """The version root as a resource; navigation's module is imported
        here, on first use: a program that only sends requests never needs it."""
        from ._resource import Resource

        return Resource(self, "")  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> Resource[R]:
        """``api.instances`` is the resource ``/1.0/instances``; ``_names`` raise."""
        resource: Resource[R] = getattr(self._root(), name)
        return resource

    def __getitem__(self, item: Segment) -> Resource[R]:
        """``api['get']``: a segment that would collide with a method name."""
        return self._root()[item]

    def __truediv__(self, item: Segment) -> Resource[R]:
        """``api / 'instances' / 'c1'``."""
        return self._root() / item

    __iter__ = None  # __getitem__ must not make an API iterable

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.endpoint.display} version={self.default_version}>"
