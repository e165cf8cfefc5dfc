"""The entry point: :class:`API` sends requests and returns :class:`APIResult`.

``API`` is a facade: the :class:`~apitx._sender.Sender` prepares and sends
(defaults, validation, the body cap, failover, redirects, tracing) through a
:class:`~apitx._transports.Transport`, and the
:class:`~apitx._operations.Operations` engine waits. The modules below call
no method of ``API``: they are given what they need.

>>> from apitx import API
>>> api = API.factory()                       # the local LXD
>>> api.get('').metadata['api_version']       # GET /1.0
'1.0'
>>> api.get(f'instances/{c1}').metadata['status']
'Running'
>>> api.get('instances/nosuch', validate=False).status_code   # branch instead of raising
404
"""

from __future__ import annotations

from typing import (TYPE_CHECKING, Any, Callable, Iterable, List, Mapping, Optional, Sequence,
                    Tuple, Union)

import requests

from ._config import DEFAULT_TIMEOUT, Limits, TimeoutLike, TraceLike
from ._exceptions import APIException, SettingsTypeError
from ._facade import DEFAULT_MAX_ANSWER_BYTES, EndpointsLike, Facade, FactoryPlan
from ._failover import Members
from ._result import APIResult, Progress
from ._sender import Sender
from ._server import Server, ServerOnce
from ._transports import FingerprintLike, HTTPTransport, Transport
from ._types import USE_DEFAULT, Cert, Headers, Params, UseDefault
from ._verbs import Verbs

# What only waits, exec, events and files use is imported by the method that
# needs it: a program that sends requests never imports the operations
# engine, websocket-client, exec's plan or the file API (issue 19: they were
# half of the cost of starting the command).
if TYPE_CHECKING:
    from ._events import EventStream
    from ._exec import ExecControl, ExecResult
    from ._exec import Input as ExecInput
    from ._exec import Output as ExecOutput
    from ._files import Files
    from ._operations import Operations
    from ._transports import WebSocketConnection


class API(Facade[APIResult], Verbs[APIResult]):
    """A connection to one LXD-style API server.

    ``session`` is a ``requests.Session`` (apitx mounts its Unix socket adapter
    on it when the endpoint is a socket); ``endpoint`` an :class:`Endpoint` or
    any string :meth:`Endpoint.parse` accepts; ``default_version`` the version
    prefix of relative URLs (``'1.0'``: ``'instances'`` means
    ``/1.0/instances``; None: no prefix); ``timeout`` the default for every
    request (see :class:`Timeout`; None means no limit); ``max_answer_bytes``
    the largest JSON answer or error detail apitx reads, decompressed, and
    the largest websocket message (:class:`ResponseTooLarge` beyond it);
    ``trace`` how transactions are traced and rendered (see
    :meth:`TraceSettings.coerce`: None follows ``DEBUG`` and ``APITX_DEBUG*``,
    read here, once); ``debug`` turns tracing on; ``limits`` how many connections are kept and opened
    (:class:`Limits`); ``transport`` what carries the bytes (default: an
    :class:`~apitx._transports.HTTPTransport` on ``session``; a
    :class:`~apitx.testing.MockTransport` answers from a function).

    ``project`` and ``target`` are added to every request's query (as
    ``project=`` and ``target=``) unless the request names them itself (or
    ``all-projects``), as LXD's Go client does; :meth:`using` makes a
    sibling API with others.

    ``endpoint`` may also be a list of HTTPS endpoints, the members of a
    cluster: the API talks to the first that answers. A request that cannot
    reach a member (nothing was sent) moves on to the next, whatever its
    method; one that failed after it was sent moves on only if it is
    idempotent (GET, HEAD, PUT, DELETE) and its body can be sent again.
    Each attempt is traced.

    One API is safe to share between threads: requests' session and urllib3's
    pool are, and the API itself holds no per-request state.
    """

    _sender: Sender

    def __init__(self, session: requests.Session, endpoint: EndpointsLike,
                 default_version: Optional[str] = None, debug: bool = False,
                 timeout: TimeoutLike = DEFAULT_TIMEOUT, trace: TraceLike = None,
                 max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
                 project: Optional[str] = None, target: Optional[str] = None, *,
                 limits: Optional[Limits] = None,
                 transport: Optional[Transport] = None) -> None:
        _check_session(session, transport)
        self.session = session
        self._settle(endpoint, default_version=default_version, debug=debug, timeout=timeout,
                     trace=trace, max_answer_bytes=max_answer_bytes, project=project,
                     target=target, limits=limits)
        if transport is None:
            transport = HTTPTransport(session, self.endpoints, limits=self.limits)
        self._sender = Sender(session, transport, Members(self.endpoints),
                              version=self.default_version, timeout=self.timeout,
                              trace=self.trace, max_answer_bytes=max_answer_bytes)
        self._server = ServerOnce()  # api.server: GET /1.0, once

    @property
    def transport(self) -> Transport:
        """What carries this API's bytes."""
        return self._sender.transport

    @classmethod
    def factory(cls, endpoint: Optional[EndpointsLike] = None,
                default_version: Optional[str] = "1.0", *, cert: Cert = None,
                verify: Union[bool, str] = True, debug: bool = False,
                timeout: TimeoutLike = DEFAULT_TIMEOUT, trace: TraceLike = None,
                max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
                fingerprint: FingerprintLike = None, project: Optional[str] = None,
                target: Optional[str] = None, limits: Optional[Limits] = None,
                transport: Optional[Transport] = None) -> API:
        """Make an API with its own session.

        ``endpoint=None`` discovers the local LXD or Incus socket (see
        :meth:`Endpoint.discover`), ``'lxd'`` or ``'incus'`` one of that
        family; otherwise give a socket path, ``unix:///path``, or
        ``https://host:8443``. For HTTPS, ``cert=(crt,
        key)`` is the client certificate and ``verify`` the CA bundle or server
        certificate to trust (or False): a file of non-CA certificates is a pin
        (trusted as itself, by any name), ``fingerprint='sha256:…'`` pins by
        fingerprint (see :class:`Pin`). ``'name:'`` is a remote as ``lxc`` or
        ``incus`` keep it. A list of HTTPS endpoints is a
        cluster's members (see :class:`API`). ``debug``, ``timeout``,
        ``trace``, ``max_answer_bytes``, ``project``, ``target`` and
        ``limits`` are :class:`API`'s. ``transport`` replaces the network:
        ``MockTransport(handler)`` answers every request from ``handler`` (no
        server; the endpoint defaults to ``https://lxd.test:8443``).

        >>> from apitx import API
        >>> tls = '/var/lib/apitx-sandbox/'
        >>> api = API.factory('https://127.0.0.1:8443', verify=tls + 'server.crt',
        ...                   cert=(tls + 'client.crt', tls + 'client.key'))
        >>> api.endpoint.display, api.server.name
        ('https://127.0.0.1:8443', 'lxd')
        >>> API.factory('incus').server.name
        'incus'
        """
        plan = FactoryPlan.resolve(endpoint, cert=cert, verify=verify, fingerprint=fingerprint,
                                   project=project, mock=transport is not None)
        session = requests.Session()
        session.cert = plan.cert
        session.verify = verify
        # Proxies and .netrc never apply to a Unix socket, and looking them up
        # in the environment is the largest single cost of a request (~12% of
        # client CPU, measured by bench/core.py). Remote endpoints keep them.
        session.trust_env = plan.endpoints[0].socket_path is None
        coerced = Limits.coerce(limits)
        return cls(session, plan.endpoints, default_version=default_version, debug=debug,
                   timeout=timeout, trace=trace, max_answer_bytes=max_answer_bytes,
                   project=plan.project, target=target, limits=coerced,
                   transport=transport or HTTPTransport(session, plan.endpoints, pin=plan.pin,
                                                        limits=coerced))

    # -- requests -------------------------------------------------------------

    def request(self, method: str, url: str, *, params: Params = None, json: Any = None,
                data: Any = None, headers: Headers = None,
                timeout: Union[TimeoutLike, UseDefault] = USE_DEFAULT, stream: bool = False,
                validate: bool = True, follow_redirects: bool = False) -> APIResult:
        """Send one request; return its :class:`APIResult`, validated.

        ``params`` is the query, ``json`` a body to encode as JSON, ``data`` a
        raw body (bytes, str, or a file or iterator, streamed), ``headers``
        extra headers, ``timeout`` this request's (default: the API's; None:
        no limit), ``stream=True`` leaves a non-JSON body unread for
        ``iter_content()``. With ``validate=False`` the result is returned as
        it is, for callers who branch on ``result.ok`` and
        ``result.status_code``; transport failures still raise (there is no
        result to return). A redirect (3xx) is not followed, since LXD never
        sends one: it fails validation, unless ``follow_redirects=True``,
        which follows it within this API's endpoint only, never to another.

        Mistakes in the arguments raise :class:`RequestError` (or
        :class:`RequestTypeError`) before anything is sent. When tracing is
        on the transaction is logged before validation, so a failing request
        is always visible.

        >>> from apitx import API
        >>> api = API.factory()
        >>> names = [i['name'] for i in api.request('GET', 'instances',
        ...                                          params={'recursion': 1}).metadata]
        >>> c1 in names
        True
        """
        return self._sender.request(self, method, url, params=params, json=json, data=data,
                                    headers=headers, timeout=timeout, stream=stream,
                                    validate=validate, follow_redirects=follow_redirects,
                                    project=self.project, target=self.target)

    def _call(self, method: str, url: str, **options: Any) -> APIResult:
        """How the verbs (``get``, ``post``... of :class:`~apitx._verbs.Verbs`) call."""
        return self.request(method, url, **options)

    def curl(self, method: str, url: str, *, params: Params = None, json: Any = None,
             data: Any = None, headers: Headers = None) -> str:
        """The curl command that would send this request, redacted; nothing is sent.

        Raises :class:`RequestError` when the body cannot be put on a command
        line (a stream with no file name, binary data over the body limit).

        >>> from apitx import API
        >>> API.factory().curl('GET', 'instances')
        'curl --unix-socket /var/lib/lxd/unix.socket http://lxd/1.0/instances'
        """
        return self._sender.curl(self._sender.prepare(
            method, url, params=params, json=json, data=data, headers=headers,
            project=self.project, target=self.target))

    # -- operations -----------------------------------------------------------

    def wait(self, result: APIResult, timeout: Optional[float] = None,
             progress: Optional[Progress] = None) -> APIResult:
        """Wait for a result's operation to end; return the final, validated result.

        On a sync result, returns the result itself (validated), unless it is
        the answer to ``GET /1.0/operations/<id>`` for an operation still
        running: that one is waited on too. On an async one, long-polls
        ``<operation>/wait?timeout=N`` until the operation ends: success
        returns that last answer (its ``metadata`` is the finished
        operation); failure or cancellation raises :class:`APIException` with
        the server's ``err``, naming the request that started the operation
        and the operation (``exc.started`` is that request's answer). When
        ``timeout`` seconds (rounded up to whole seconds, as LXD takes them;
        None or ``math.inf``: no limit) pass and the operation still runs,
        raises :class:`OperationTimeout` carrying the last answer: a running
        operation is never returned as if done.

        ``progress`` is called with each update of the operation while it
        runs, as an :class:`APIResult` whose ``metadata`` is the operation
        (with LXD's progress figures) and ``waited`` the seconds so far:
        the updates come from the event stream (``/1.0/events?type=operation``
        of the operation's project, subscribed before the operation is
        checked once, so none is missed), and, between updates, the last
        state again each second, so a clock shown beside it ticks. A server
        with no event stream is polled instead, 1 s at a time; a stream on
        which nothing, not even a keepalive, comes for 40 s fails the wait
        with :class:`APITimeoutError`, as a poll would.

        >>> from apitx import API
        >>> api = API.factory()
        >>> started = api.post(f'instances/{c1}/exec', json={
        ...     'command': ['sleep', '1'], 'record-output': True, 'wait-for-websocket': False})
        >>> api.wait(started, timeout=60).metadata['metadata']['return']
        0
        """
        return self._operations().wait(self, result, timeout, progress, project=self.project,
                                       target=self.target)

    def wait_all(self, results: Sequence[APIResult], timeout: Optional[float] = None,
                 return_exceptions: bool = False) -> List[Union[APIResult, APIException]]:
        """Wait for many results' operations at once; return their final
        results in the order given.

        One event stream watches them all (subscribed before each operation
        is checked once, so one that ends meanwhile is not missed; of every
        project when they run in several); without events, one poll round a
        second checks them all. Each result is what :meth:`wait` would return
        for it (a sync one passes through). All are waited for; then the
        first failure in the order given raises as :meth:`wait` raises it,
        or, with ``return_exceptions=True``, each failure
        (:class:`APIException`) is returned in its place. When ``timeout``
        seconds pass (a deadline for the whole wait, rounded up as
        :meth:`wait` does), :class:`OperationTimeout` is raised for the first
        operation still running. Every result must come from this API's
        server (or its siblings'): another server's raises
        :class:`RequestError` before anything is waited on.

        >>> from apitx import API
        >>> api = API.factory()
        >>> cmd = {'record-output': True, 'wait-for-websocket': False}
        >>> started = [api.post(f'instances/{c1}/exec', json={**cmd, 'command': ['sh', '-c', f'exit {n}']})
        ...            for n in (0, 1, 2)]
        >>> [done.metadata['metadata']['return'] for done in api.wait_all(started, timeout=60)]
        [0, 1, 2]
        """
        return self._operations().wait_all(self, results, timeout, return_exceptions,
                                           project=self.project, target=self.target)

    def _operations(self) -> Operations:
        """The operations engine, on this API's sender (it keeps nothing else)."""
        from ._operations import Operations

        return Operations(self._sender)

    # -- websockets (exec, events: _exec.py, _events.py; the transport's) --------

    def exec(self, instance: str, command: Sequence[str], *, stdin: ExecInput = None,
             env: Optional[Mapping[str, str]] = None, cwd: Optional[str] = None,
             user: Optional[int] = None, group: Optional[int] = None,
             timeout: Optional[float] = None, stdout: ExecOutput = None,
             stderr: ExecOutput = None, project: Optional[str] = None,
             terminal: Optional[Tuple[int, int]] = None,
             on_start: Optional[Callable[[ExecControl], Any]] = None) -> ExecResult:
        """Run a command in an instance with live streams; see :func:`apitx._exec.run_exec`.

        >>> from apitx import API
        >>> API.factory().exec(c1, ['sh', '-c', 'echo hi']).stdout
        b'hi\\n'
        """
        from ._exec import run_exec

        return run_exec(self, instance, command, stdin=stdin, env=env, cwd=cwd, user=user,
                        group=group, timeout=timeout, stdout=stdout, stderr=stderr,
                        project=project if project is not None else self.project,
                        terminal=terminal, on_start=on_start)

    def events(self, types: Optional[Iterable[str]] = None, project: Optional[str] = None,
               all_projects: bool = False, timeout: Optional[float] = None) -> EventStream:
        """The server's events (``/1.0/events``) as an iterator of :class:`Event`;
        see :func:`apitx._events.events`.

        >>> from apitx import API
        >>> api = API.factory()
        >>> with api.events(types=['lifecycle'], timeout=30) as stream:
        ...     _ = api.patch(f'instances/{c1}', json={'config': {'user.note': 'hi'}})
        ...     mine = (e for e in stream if e.metadata['source'] == f'/1.0/instances/{c1}')
        ...     print(next(mine).metadata['action'])
        instance-updated
        """
        from ._events import events

        return events(self, types=types, project=project if project is not None else
                      None if all_projects else self.project, all_projects=all_projects,
                      timeout=timeout)

    def websocket(self, path: str, params: Optional[Mapping[str, Any]] = None,
                  timeout: TimeoutLike = None) -> WebSocketConnection:
        """A websocket at an API path (``'events'``, ``'/1.0/operations/<id>/websocket'``),
        over this API's transport, with its certificates and trust.

        ``timeout`` defaults to the API's: its connect part bounds connecting
        and the upgrade, its read part every later read. A cluster member that
        cannot be reached is passed over, as for requests. Raises
        :class:`APIConnectionError`, :class:`APITimeoutError`, or the
        :class:`APIException` the server's refusal means (403 bad secret, 404).

        >>> from apitx import API
        >>> api = API.factory()
        >>> with api.websocket('events', {'type': 'lifecycle'}) as ws:
        ...     _ = api.patch(f'instances/{c1}', json={'config': {'user.note': 'hi'}})
        ...     print(ws.recv())
        {"type":"lifecycle",...}
        """
        return self._sender.websocket(self, path, params, timeout)

    def close(self) -> None:
        """Close the transport and its pooled connections (the session's)."""
        self._sender.transport.close()

    def __enter__(self) -> API:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- the server (what it is: _server.py; its file API: _files.py) ---------

    @property
    def server(self) -> Server:
        """What the server says about itself in ``GET /1.0``: LXD or Incus, its
        version, API extensions, ``auth`` and project (see :class:`Server`).

        Fetched on first use, once, whichever thread asks first (the others
        wait for that answer); a frozen value after that. With tracing on,
        the trace then says which server this API talks to, in one line.

        >>> from apitx import API
        >>> api = API.factory()
        >>> api.server.name, api.server.version
        ('lxd', '5.0.2')
        """
        return self._server.get(self._fetch_server)

    def _fetch_server(self) -> Server:
        # Always /1.0, whatever default_version: that is where an LXD-style
        # server describes itself.
        server = Server.from_metadata(self.get("/1.0").metadata)
        if self._sender.tracer is not None:
            self._sender.tracer.note(f"apitx: talking to {server} at {self.endpoint.display}")
        return server

    def has_extension(self, name: str) -> bool:
        """True when the server announces API extension ``name``.

        >>> from apitx import API
        >>> api = API.factory()
        >>> api.has_extension('instances'), api.has_extension('no_such_extension')
        (True, False)
        """
        return self.server.has(name)

    def require(self, *names: str) -> Server:
        """Raise :class:`MissingExtension` unless the server has every one of
        these API extensions; return the server. Call it before a feature
        that needs them, to fail with a clear message instead of an obscure
        error halfway through.

        >>> from apitx import API
        >>> api = API.factory()
        >>> api.require('container_exec_recording', 'file_delete').name
        'lxd'
        >>> api.require('no_such_extension')
        Traceback (most recent call last):
        ...
        apitx.MissingExtension: lxd 5.0.2 (API 1.0) at unix:/var/lib/lxd/unix.socket lacks API extension
        no_such_extension: this needs a newer lxd, or a way that does without (api.has_extension() tells which)
        """
        server = self.server
        missing = self._missing(server, names)
        if missing is not None:
            raise missing
        return server

    def files(self, instance: str, project: Optional[str] = None) -> Files:
        """The files of ``instance``, in this server's dialect (see :class:`Files`).

        >>> from apitx import API
        >>> files = API.factory().files(c1)
        >>> files.push('/tmp/motd', 'hello\\n', mode=0o644)
        >>> files.pull('/tmp/motd')
        b'hello\\n'
        """
        from ._files import Files

        return Files(self, instance, project=project)


def _check_session(session: Any, transport: Any) -> None:
    """Refuse, when the API is made, what would fail at the first request
    with an AttributeError, far from the mistake."""
    if not isinstance(session, requests.Session):
        raise SettingsTypeError(f"API(session={session!r}): give a requests.Session "
                                "(API.factory() makes one)")
    if transport is not None and not all(callable(getattr(transport, name, None)) for name in (
            "send", "iter_body", "websocket", "close")):
        raise SettingsTypeError(f"transport={transport!r}: give an apitx transport, such as "
                                "apitx.testing.MockTransport(handler)")
