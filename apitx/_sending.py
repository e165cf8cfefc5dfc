"""What the sync and async senders share: their state and every decision.

:class:`SenderBase` holds what an API and its siblings share (the members,
the version prefix, the timeout, the render and trace settings, the body
policies, the routes) and makes the decisions that involve no I/O: where a
path goes, whether a failed request moves on to another member and where,
where a redirect leads, what a refused websocket upgrade raises. The two
senders (:mod:`apitx._sender`, :mod:`apitx._aio._sender`) only send.

Example: the sender of a cluster's API (nothing is sent here), after a
GET to its first member failed before sending anything:

>>> from apitx import API, APIConnectionError
>>> api = API.factory(['https://m1.test:8443', 'https://m2.test:8443'],
...                   cert=('/var/lib/apitx-sandbox/client.crt', '/var/lib/apitx-sandbox/client.key'))
>>> m1, sender = api.endpoint, api._sender
>>> failed = APIConnectionError('GET https://m1.test:8443/1.0: connection refused')
>>> failed.sent = False
>>> sender.next_member(failed, tried=1, endpoint=m1, method='GET', body=None,
...                    url='https://m1.test:8443/1.0')
(Endpoint(base_url='https://m2.test:8443', socket_path=None, project=None), 'https://m2.test:8443/1.0')
>>> print(sender.next_member(failed, tried=2, endpoint=m1, method='GET', body=None,
...                          url='https://m1.test:8443/1.0'))    # both tried: raise it
None
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable, Dict, Generic, Optional, Tuple, TypeVar

from ._config import Timeout, TraceSettings
from ._endpoint import Endpoint
from ._exceptions import APIConnectionError, APIException, APITXError
from ._failover import Members, may_try_elsewhere
from ._prepare import Root, join_url
from ._redact import redact_url
from ._result import BaseResult, Route, Trusts
from ._transports import BodyPolicy, UpgradeRefused

if TYPE_CHECKING:  # the tracer (and its renderers) is imported only when tracing is on
    from ._tracing import Tracer

#: apitx's logger: traces, and a note when a request moves to another member.
logger = logging.getLogger("apitx")

#: How many redirects ``follow_redirects=True`` follows.
MAX_REDIRECTS = 5

#: The transport type of a sender (sync or async).
T = TypeVar("T", bound=Trusts)


class SenderBase(Generic[T]):
    """The shared state and decisions of a sender (see the module)."""

    def __init__(self, transport: T, members: Members, *, version: Optional[str],
                 timeout: Timeout, trace: TraceSettings, max_answer_bytes: int) -> None:
        self.transport = transport
        self.members = members
        self.version = version
        self.timeout = timeout
        self.trace = trace
        self.options = trace.render
        self.tracer: Optional[Tracer] = None
        if trace.enabled:
            from ._tracing import Tracer

            self.tracer = Tracer(trace)
        self.max_answer_bytes = max_answer_bytes
        #: How much of an answer is read: whole, or (``stream=True``) only
        #: what apitx must judge.
        self.reading = {False: BodyPolicy(max_answer_bytes, False),
                        True: BodyPolicy(max_answer_bytes, True)}
        self._routes: Dict[Endpoint, Route[T]] = {}
        self._roots: Dict[Endpoint, Root] = {}

    @property
    def endpoint(self) -> Endpoint:
        """The member requests go to now."""
        return self.members.current

    def route(self, endpoint: Endpoint) -> Route[T]:
        """The :class:`Route` results sent to ``endpoint`` share."""
        route = self._routes.get(endpoint)
        if route is None:
            route = self._routes.setdefault(endpoint, Route(endpoint, self.transport,
                                                            self.options))
        return route

    def url(self, url: str) -> str:
        """The full URL of an API path on the member in use (see :func:`join_url`)."""
        endpoint = self.members.current
        root = self._roots.get(endpoint)
        if root is None:
            root = self._roots.setdefault(endpoint, Root(endpoint.base_url, self.version,
                                                         endpoint.display))
        return join_url(root, url)

    def traced(self) -> bool:
        """True when websocket messages are traced too."""
        return self.tracer is not None and logger.isEnabledFor(logging.DEBUG)

    def next_member(self, failed: APITXError, tried: int, endpoint: Endpoint,
                    method: Optional[str], body: Any,
                    url: str) -> Optional[Tuple[Endpoint, str]]:
        """Where a failed request moves on to, and its URL there; None when it
        must not (the failure is raised): every member was tried, or it may
        have been applied (see :mod:`apitx._failover`). A websocket's upgrade
        is a GET with no body."""
        if tried >= len(self.members) or not may_try_elsewhere(failed.sent, method, body):
            return None
        moved = self.members.advance(endpoint)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("apitx: %s; %s, trying %s", failed,
                         "nothing was sent" if failed.sent is False else "idempotent",
                         moved.display)
        return moved, moved.base_url + url[len(endpoint.base_url):]

    def redirect(self, result: BaseResult) -> Tuple[str, Optional[str]]:
        """Where a redirect leads and with which method (None: the request as
        it was), if it stays on this endpoint; else the :class:`APIException`
        that says where it led (see :mod:`apitx._redirects`)."""
        # Imported here: LXD never redirects, and only follow_redirects=True asks.
        from ._redirects import redirect_method, resolve, same_origin

        target = resolve(result.request.url or "", result.response.headers.get("Location") or "")
        if not same_origin(target, result.endpoint.base_url):
            raise APIException(result, error=(
                f"the server redirects to {redact_url(target)}, off this endpoint "
                f"({result.endpoint.display}): apitx never follows a redirect elsewhere"))
        return target, redirect_method(result.status_code, result.request.method)

    def refused(self, refusal: UpgradeRefused, made: Callable[..., BaseResult], url: str,
                line: str, endpoint: Endpoint) -> APIConnectionError:
        """What a refused websocket upgrade raises: the :class:`APIException`
        its answer means (raised here, traced first), else a connection error."""
        result = made(url, refusal.status, refusal.body, reason=refusal.reason,
                      headers=refusal.headers, elapsed=refusal.elapsed)
        if self.tracer is not None:
            self.tracer.trace(result.exchange)
        result.validate()
        return APIConnectionError(  # validate() raises for any status >= 400
            f"{line}: the server refused the websocket upgrade with HTTP {refusal.status}",
            endpoint=endpoint.display)
