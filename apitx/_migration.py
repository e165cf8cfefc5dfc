"""One migration between two servers, in the mode asked: the engine under
``apitx.migrate`` for instances and custom volumes.

LXD's migration (Incus's is the same protocol) is a pair of operations, one
on each server, joined by websockets (``control`` and ``fs``; ``criu`` for a
live container), each opened with a one-time secret the operation announces
in its ``metadata``. The mode says who connects to whom:

- ``pull``: the source's operation waits (``POST <object>`` with
  ``migration: true``); the target is asked to create the object from it
  (``source: {type: migration, mode: pull, operation: <URL>, secrets,
  certificate}``) and its daemon connects to the source's;
- ``push``: the target's operation waits (``source: {type: migration, mode:
  push}``); the source is asked to connect to it (``target: {operation,
  secrets, certificate}``);
- ``relay``: both wait; apitx connects to both and carries every frame
  (:class:`~apitx._transports.Relay`), for servers that cannot reach each
  other.

The daemon that connects pins the other's certificate (sent in the request)
and reaches it at the address the other announces (``environment.addresses``):
pull needs the source listening on the network, push the target. No other
trust is needed: the secrets are it (measured, docs/migration.md).

Both operations must end well: the target's says the object is there, the
source's that everything was sent (LXD 5.0.2 ends the source's a moment after
the target's). When either fails, the other is cancelled (a waiting
operation gives up on its own only after 10 s), both servers' words are kept,
the side at fault is named (:func:`_blame`), and what the target created is
removed through the caller's ``remove``: a target that dies midway has a
partial instance again once it is back (measured), so removal waits up to
:data:`CLEANUP_SECONDS` for it.

Example: copy instance ``c1`` to the second LXD as ``c2``, apitx carrying
the bytes (``apitx.migrate.copy_instance`` does this, with its checks):

>>> from apitx import API
>>> source, target = Peer.read(API.factory(), 'source'), Peer.read(API.factory(lxd2), 'target')
>>> job = Job(what=f'instance {c1}', source_url=f'instances/{c1}',
...           source_body={'migration': True, 'live': False, 'instance_only': True},
...           target_url='instances', target_body={'name': c2, 'architecture': 'x86_64'},
...           target_pool='default')
>>> remove = lambda: remove_created(target.client, f'instances/{c2}', f'instance {c2}')
>>> migrate(job, source, target, 'relay', progress=None, timeout=60, remove=remove).ok
True
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Tuple

from ._client import Client
from ._exceptions import (APIConnectionError, APIException, APINotFoundException,
                          APITimeoutError, APITXError, CertificateMismatch, MigrationError,
                          OperationTimeout, RequestError, RequestTypeError)
from ._redact import redact_free_text
from ._result import APIResult
from ._server import Server
from ._transfer import ProgressCallback, ProgressReader, readable_size

if TYPE_CHECKING:
    # Relay mode imports these when it starts: an export, an import, a pull or
    # a push never pays for websocket-client (~10 ms at import).
    from ._transports import Relay, WebSocketConnection

#: The modes a migration can run in (see the module).
MODES = ("pull", "push", "relay")
#: How long the source's operation may still run once the target's has ended.
SOURCE_GRACE_SECONDS = 60.0
#: How long a failed migration waits for an unreachable target to come back,
#: to remove what it created.
CLEANUP_SECONDS = 60.0
#: Failures whose words name the target's disk (rsync's receiver, the
#: filesystem): the target is at fault, whatever the source says.
_TARGET_FULL = ("No space left on device", "Disk quota exceeded")


@dataclass(frozen=True)
class Peer:
    """One server of a migration, as apitx and the other daemon see it.

    ``address`` is where the other daemon can reach it (``https://host:port``:
    the API's own URL when it is HTTPS, else the first address the server
    announces), None when it is not on the network; ``certificate`` its
    certificate (PEM), pinned by the other daemon; ``fingerprint`` that
    certificate's (every member of a cluster presents the same).
    """

    client: Client
    role: str
    server: Server
    address: Optional[str]
    certificate: str
    fingerprint: str
    clustered: bool

    @classmethod
    def read(cls, client: Client, role: str) -> Peer:
        """What ``GET /1.0`` says about the server behind ``client``.

        >>> from apitx import API
        >>> peer = Peer.read(API.factory(), 'source')
        >>> peer.address, peer.server.name, peer.clustered
        ('https://127.0.0.1:8443', 'lxd', False)
        """
        try:
            metadata = client.request("GET", "/1.0").metadata or {}
        except APITXError as exc:
            raise side_failed(role, client, exc) from exc
        environment = metadata.get("environment") or {}
        base = client.endpoint.base_url
        announced = [f"https://{address}" for address in environment.get("addresses") or ()
                     if not str(address).startswith(":")]
        address = base if base.startswith("https://") else next(iter(announced), None)
        return cls(client=client, role=role, server=Server.from_metadata(metadata),
                   address=address, certificate=str(environment.get("certificate") or ""),
                   fingerprint=str(environment.get("certificate_fingerprint") or ""),
                   clustered=bool(environment.get("server_clustered")))

    def __str__(self) -> str:
        return f"the {self.role} ({self.server} at {self.client.endpoint.display})"

    def same_server(self, other: Peer) -> bool:
        """True when both are one server (or members of one cluster)."""
        return bool(self.fingerprint) and self.fingerprint == other.fingerprint


@dataclass(frozen=True)
class Job:
    """What to move, as each side is asked for it.

    ``source_url`` and ``source_body`` start the source's operation
    (``migration: true`` and the object's options); ``target_url``,
    ``target_body`` and ``target_params`` create the object on the target
    (the body's ``source`` gets the mode's fields); ``target_pool`` is the
    pool the object lands in, for diagnosing a full one; ``what`` names the
    object in messages (``'instance c1'``).
    """

    what: str
    source_url: str
    source_body: Dict[str, Any]
    target_url: str
    target_body: Dict[str, Any]
    target_pool: Optional[str] = None
    target_params: Dict[str, str] = field(default_factory=dict)


#: Removes what a failed migration left on the target; returns what is left
#: behind when it could not (None: nothing is).
Remover = Callable[[], Optional[str]]


def check_mode(mode: str) -> None:
    """Refuse a mode that is none of :data:`MODES`, before anything is sent.

    >>> check_mode('rsync')
    Traceback (most recent call last):
      ...
    apitx.RequestError: mode='rsync': give one of 'pull', 'push', 'relay'; nothing was sent
    """
    if mode not in MODES:
        raise RequestError(f"mode={mode!r}: give one of {', '.join(map(repr, MODES))}; "
                           "nothing was sent")


def check_name(label: str, value: Any) -> None:
    """Refuse a name that is not one (of an instance, volume, pool, member or
    project), before anything is sent.

    >>> check_name('new_name', 'web/2')
    Traceback (most recent call last):
      ...
    apitx.RequestError: new_name='web/2': give a name, without '/'; nothing was sent
    """
    if not isinstance(value, str):
        raise RequestTypeError(f"{label}={value!r}: give a name (a str), not "
                               f"{type(value).__name__}; nothing was sent")
    if not value or "/" in value:
        raise RequestError(f"{label}={value!r}: give a name, without '/'; nothing was sent")


def wait_reporting(started: APIResult, reader: ProgressReader, role: str,
                   progress: Optional[ProgressCallback], timeout: Optional[float], *,
                   each: Optional[Callable[[], None]] = None) -> APIResult:
    """Wait for the operation ``started`` announced, passing each progress
    text of its metadata that changed to ``progress`` (as ``role``'s);
    ``each`` is called with every answer, at least once a second, when
    there is a ``progress`` to report to.

    Without ``progress`` it is a plain wait: long polls, no event stream.
    The stream costs a TLS connection and websocket-client's import (~40 ms
    of CPU, measured) just as the servers start moving the data, for
    progress nobody reads.

    >>> import time
    >>> from apitx import API
    >>> started = API.factory().post('instances', json={'name': c2, 'source': {
    ...     'type': 'image', 'alias': 'apitx-busybox'}})
    >>> reader = ProgressReader(time.monotonic())
    >>> wait_reporting(started, reader, 'target', None, 60).metadata['status']
    'Success'
    """
    if progress is None:
        return started.wait(timeout)

    def report(answer: APIResult) -> None:
        operation = answer.metadata if isinstance(answer.metadata, dict) else {}
        update = reader.read(role, operation.get("metadata"))
        if update is not None:
            progress(update)
        if each is not None:
            each()

    return started.wait(timeout, progress=report)


def counted(pieces: Iterator[bytes], role: str, reader: ProgressReader,
            progress: Optional[ProgressCallback], stage: str, done: str,
            total: Optional[int]) -> Iterator[bytes]:
    """``pieces`` as they come, a failure to read one raised as ``role``'s
    (:class:`SideFailure`), counted for ``progress`` (``"12.00MB <done>"``,
    once a second and at the end).

    >>> import time
    >>> reader = ProgressReader(time.monotonic())
    >>> pieces = counted(iter([b'abc', b'de']), 'source', reader, print, 'download',
    ...                  'received', None)
    >>> b''.join(pieces)
    TransferProgress(side='apitx', stage='download', text='3B received', ...)
    TransferProgress(side='apitx', stage='download', text='5B received', ...)
    b'abcde'
    """
    moved, reported = 0, 0.0
    while True:
        piece = on_side(role, lambda: next(pieces, None))
        if piece is None:
            break
        moved += len(piece)
        now = time.monotonic()
        if progress is not None and now - reported >= 1.0:
            reported = now
            progress(reader.made(stage, f"{readable_size(moved)} {done}", size=moved,
                                 total=total))
        yield piece
    if progress is not None:
        progress(reader.made(stage, f"{readable_size(moved)} {done}", size=moved, total=total))


def check_reachable(mode: str, source: Peer, target: Peer) -> None:
    """Refuse a mode the servers cannot run, before anything is sent.

    >>> from dataclasses import replace
    >>> from apitx import API
    >>> here = Peer.read(API.factory(), 'source')
    >>> check_reachable('push', here, here)      # the target is on the network: fine
    >>> check_reachable('push', here, replace(here, role='target', address=None))
    Traceback (most recent call last):
      ...
    apitx.RequestError: mode='push' needs the target (lxd 5.0.2 (API 1.0) at
    unix:/var/lib/lxd/unix.socket) on the network (the source's daemon connects to the
    target), and it announces no address (core.https_address is unset): set one, or use
    mode='relay', where apitx carries the data; nothing was sent
    """
    check_mode(mode)
    for needed, peer, why in (("pull", source, "the target's daemon connects to the source"),
                              ("push", target, "the source's daemon connects to the target")):
        if mode == needed and peer.address is None:
            raise RequestError(
                f"mode='{mode}' needs {peer} on the network ({why}), and it announces no "
                "address (core.https_address is unset): set one, or use mode='relay', "
                "where apitx carries the data; nothing was sent")


def migrate(job: Job, source: Peer, target: Peer, mode: str, *,
            progress: Optional[ProgressCallback], timeout: Optional[float],
            remove: Remover) -> APIResult:
    """Run one migration; return the target's final answer (its operation, done).

    Raises :class:`MigrationError` naming the side at fault, with both
    servers' words, after cancelling what still runs and removing what the
    target created (through ``remove``).
    """
    check_reachable(mode, source, target)
    return _Run(job, source, target, mode, progress, timeout, remove).go()


def side_failed(role: str, client: Client, exc: BaseException, doing: str = "") -> MigrationError:
    """A :class:`MigrationError` for a failure talking to one side, before
    anything was started on either.

    >>> from apitx import API, APITXError
    >>> api = API.factory()
    >>> try:
    ...     api.get('instances/nosuch')
    ... except APITXError as exc:
    ...     print(side_failed('target', api, exc, 'reading its instances'))
    the target at unix:/var/lib/lxd/unix.socket failed (reading its instances): Instance not found; nothing was started on either side
    """
    words = _words(exc)
    return failed_on(role, f"the {role} at {client.endpoint.display} failed"
                           f"{f' ({doing})' if doing else ''}: {words}; nothing was started on "
                           "either side", words)


def failed_on(role: str, message: str, words: str) -> MigrationError:
    """A :class:`MigrationError` of one side, ``words`` being what it said.

    >>> error = failed_on('target', 'the target has no pool p1', 'Storage pool not found')
    >>> error.side, error.source_error, error.target_error
    ('target', None, 'Storage pool not found')
    """
    return MigrationError(message, side=role,
                          source_error=words if role == "source" else None,
                          target_error=words if role == "target" else None)


def remove_created(client: Client, url: str, what: str,
                   seconds: float = CLEANUP_SECONDS) -> Optional[str]:
    """Delete the object at ``url`` on the target if it is there (waiting for
    the deletion); return what is left behind, or None.

    A target that cannot be reached is waited for, up to ``seconds``: one
    that died midway has the partial object again once it is back. So is one
    that answers with a server error (5xx): a cluster's other members answer
    500 for an instance on a member that is down, and LXD 500s a delete it
    cannot do yet (an instance still busy). Waiting is the point here: the
    object must not outlive the failure unseen.

    >>> from apitx import API
    >>> api = API.factory()
    >>> api.post('instances', json={'name': c2, 'source': {'type': 'none'}}).wait(60).ok
    True
    >>> print(remove_created(api, f'instances/{c2}', f'instance {c2}'))   # nothing left
    None
    >>> api.get(f'instances/{c2}', validate=False).status_code
    404
    """
    until = time.monotonic() + seconds
    while True:
        try:
            if client.request("GET", url, validate=False).status_code == 404:
                return None
            client.request("DELETE", url).wait(CLEANUP_SECONDS)
            return None
        except APINotFoundException:
            return None  # gone meanwhile: the server's own revert
        except (APIConnectionError, APITimeoutError) as exc:
            if time.monotonic() >= until:
                return f"{what} (the target did not answer for {seconds:.0f} s: {exc})"
            time.sleep(1.0)
        except APIException as exc:
            if exc.status_code < 500 or time.monotonic() >= until:
                return f"{what} (deleting it failed: {_words(exc)})"
            time.sleep(1.0)
        except APITXError as exc:
            return f"{what} (deleting it failed: {_words(exc)})"


class SideFailure(Exception):
    """A failure talking to one side (``role``), before it is explained in a
    :class:`MigrationError`; ``exc`` is apitx's exception. Internal."""

    def __init__(self, role: str, exc: BaseException) -> None:
        super().__init__(str(exc))
        self.role = role
        self.exc = exc


def on_side(role: str, call: Callable[[], Any]) -> Any:
    """``call()``, a failure of apitx's raised as :class:`SideFailure` of ``role``.

    >>> from apitx import API
    >>> api = API.factory()
    >>> on_side('source', lambda: api.get('images/abc'))
    Traceback (most recent call last):
      ...
    apitx._migration.SideFailure: GET unix:/var/lib/lxd/unix.socket /1.0/images/abc: Image not found
    """
    try:
        return call()
    except APITXError as exc:
        raise SideFailure(role, exc) from exc


@dataclass
class _Op:
    """One side's operation: the answer that announced it, and how it ended."""

    peer: Peer
    started: APIResult
    status: str = "Running"
    err: str = ""
    ended_at: str = ""
    cancelled: bool = False

    @property
    def id(self) -> str:
        return str((self.started.metadata or {}).get("id") or "")

    @property
    def secrets(self) -> Dict[str, str]:
        found = (self.started.metadata or {}).get("metadata") or {}
        return {str(key): str(value) for key, value in found.items()}

    @property
    def url(self) -> str:
        return f"/1.0/operations/{self.id}"

    def refresh(self) -> None:
        """Read the operation's state once (it is forgotten ~5 s after it ends)."""
        if self.status not in ("Running", "Pending"):
            return
        try:
            answer = self.peer.client.request("GET", self.url, validate=False)
        except (APIConnectionError, APITimeoutError) as exc:
            self.status, self.err = "Unreachable", f"it stopped answering: {exc}"
            return
        except APITXError as exc:
            self.status, self.err = "Unknown", f"could not be asked: {exc}"
            return
        if answer.status_code == 404:
            # Asked the moment something failed, a server that no longer
            # knows its running operation was restarted (an operation ended
            # is remembered ~5 s): its daemon died, as one that does not
            # answer at all.
            self.status, self.err = "Unreachable", ("its operation is gone: its daemon restarted, "
                                                    "or it ended unseen over 5 s ago")
            return
        state = answer.metadata if answer.ok and isinstance(answer.metadata, dict) else {}
        if state:
            self.status = str(state.get("status") or "Unknown")
            self.err = str(state.get("err") or "")
            self.ended_at = str(state.get("updated_at") or "")

    def ended(self, answer: APIResult) -> None:
        state = answer.metadata if isinstance(answer.metadata, dict) else {}
        self.status = str(state.get("status") or "Success")
        self.ended_at = str(state.get("updated_at") or "")

    def failed(self, exc: BaseException) -> None:
        self.status = "Failure"
        self.err = full_words(exc)
        state = exc.result.metadata if isinstance(exc, APIException) else None
        if isinstance(state, dict):
            self.ended_at = str(state.get("updated_at") or "")
        elif isinstance(exc, APIException) and exc.result.status_code >= 500:
            # Not the operation's failure but the server's, about it: a
            # cluster member answering for the member that runs it, which
            # died (HTTP 500 "Get https://<member>/1.0/operations/…: EOF",
            # measured on LXD 5.0.2). A failed operation comes as HTTP 200,
            # on LXD (the operation) and on Incus (type error) alike.
            self.status = "Unreachable"

    def cancel(self) -> None:
        """Ask the server to cancel it, if it still runs (best effort)."""
        self.refresh()
        if self.status in ("Running", "Pending"):
            self.cancelled = True
            try:
                self.peer.client.request("DELETE", self.url, validate=False)
            except APITXError:
                pass  # the server is gone: so is its operation


class _Run:
    """One migration, from start to success or to an explained failure."""

    def __init__(self, job: Job, source: Peer, target: Peer, mode: str,
                 progress: Optional[ProgressCallback], timeout: Optional[float],
                 remove: Remover) -> None:
        self.job, self.source, self.target, self.mode = job, source, target, mode
        self.progress, self.timeout, self.remove = progress, timeout, remove
        self.ops: Dict[str, _Op] = {}
        self.relay: Optional[Relay] = None
        self.reader = ProgressReader(time.monotonic())
        self.target_free: Optional[int] = None
        self._reported = 0.0

    # -- the happy path -------------------------------------------------------------

    def go(self) -> APIResult:
        self.target_free = self._pool_free()
        try:
            self._start()
            return self._finish()
        except (APITXError, SideFailure) as exc:
            raise self._fail(exc) from (exc.exc if isinstance(exc, SideFailure) else exc)
        except BaseException:
            for op in self.ops.values():  # interrupted: stop both servers' work
                op.cancel()
            raise
        finally:
            if self.relay is not None:
                self.relay.close()

    def _start(self) -> None:
        job, mode = self.job, self.mode
        source_fields: Dict[str, Any] = dict(job.target_body.get("source") or {})
        if mode in ("pull", "relay"):
            self.ops["source"] = _Op(self.source, self._post(
                self.source, job.source_url, job.source_body, {}))
        if mode == "pull":
            source_op = self.ops["source"]
            source_fields.update(type="migration", mode="pull",
                                 operation=f"{self.source.address}{source_op.url}",
                                 secrets=source_op.secrets,
                                 certificate=self.source.certificate)
        else:
            source_fields.update(type="migration", mode="push")
        self.ops["target"] = _Op(self.target, self._post(
            self.target, job.target_url, {**job.target_body, "source": source_fields},
            job.target_params))
        if mode == "push":
            target_op = self.ops["target"]
            body = {**job.source_body, "target": {
                "operation": f"{self.target.address}{target_op.url}",
                "secrets": target_op.secrets, "certificate": self.target.certificate}}
            self.ops["source"] = _Op(self.source, self._post(self.source, job.source_url,
                                                             body, {}))
        if mode == "relay":
            self._connect_relay()

    def _connect_relay(self) -> None:
        """Open each websocket on both sides, ``control`` first, as LXD's own
        client does (the source gives up on them after 10 s), and relay them."""
        from ._transports import Relay

        source_op, target_op = self.ops["source"], self.ops["target"]
        theirs, ours = target_op.secrets, source_op.secrets
        missing = sorted(set(theirs) - set(ours))
        if missing or "control" not in theirs:
            raise SideFailure("target", RuntimeError(
                f"the target expects websockets {sorted(theirs)}, the source offers "
                f"{sorted(ours)}: they cannot be relayed"))
        channels: List[Tuple[str, WebSocketConnection, WebSocketConnection]] = []
        try:
            for name in ["control"] + sorted(set(theirs) - {"control"}):
                channels.append((name, self._websocket(self.source, source_op, ours[name]),
                                 self._websocket(self.target, target_op, theirs[name])))
        except BaseException:
            for _, one, other in channels:
                one.close()
                other.close()
            raise
        self.relay = Relay(channels)
        self.relay.start()

    def _finish(self) -> APIResult:
        target_op = self.ops["target"]
        try:
            done = wait_reporting(target_op.started, self.reader, "target", self.progress,
                                  self.timeout, each=self._report)
        except OperationTimeout as exc:
            target_op.failed(exc)
            raise SideFailure("target", exc) from exc
        except APINotFoundException as exc:
            # Asked while running (a long poll; with progress=, a poll at
            # least every 15 s beside the events), the operation is unknown
            # now: the daemon, or the cluster member, that ran it died and
            # came back (measured: a member killed mid-copy and restarted
            # answers 404 "Operation not found"). By then the source's side
            # has failed too, and ended long enough ago to be forgotten: the
            # target is the side at fault, whatever the source says.
            target_op.failed(exc)
            raise SideFailure("target", RuntimeError(
                "its operation vanished while apitx waited on it: the daemon (or the cluster "
                f"member) running it died or restarted ({_words(exc)})")) from exc
        except APIException as exc:
            target_op.failed(exc)
            raise
        except APITXError as exc:
            raise SideFailure("target", exc) from exc
        target_op.ended(done)
        source_op = self.ops["source"]
        try:
            source_op.ended(source_op.started.wait(SOURCE_GRACE_SECONDS))
        except APIException as exc:
            source_op.failed(exc)
            raise
        except APITXError as exc:
            raise SideFailure("source", exc) from exc
        self._report(force=True)
        return done

    def _post(self, peer: Peer, url: str, body: Dict[str, Any],
              params: Dict[str, str]) -> APIResult:
        try:
            return peer.client.request("POST", url, json=body, params=params or None)
        except APITXError as exc:
            raise SideFailure(peer.role, exc) from exc

    def _websocket(self, peer: Peer, op: _Op, secret: str) -> WebSocketConnection:
        try:
            return peer.client.websocket(f"{op.url}/websocket", {"secret": secret})
        except APITXError as exc:
            raise SideFailure(peer.role, exc) from exc

    # -- progress -----------------------------------------------------------------------

    def _report(self, force: bool = False) -> None:
        """The relay's count, once a second (and at the end)."""
        if self.relay is None:
            return
        now = time.monotonic()
        if not force and now - self._reported < 1.0:
            return
        self._reported = now
        carried = self.relay.carried
        update = self.reader.made("relay", f"{readable_size(carried)} relayed", size=carried)
        if self.progress is not None:
            self.progress(update)

    # -- failure ---------------------------------------------------------------------------

    def _fail(self, exc: BaseException) -> MigrationError:
        """Cancel what still runs, read how each side ended, name the side at
        fault, remove what the target created; the error that says it all."""
        for op in self.ops.values():
            if op.status in ("Running", "Pending"):
                op.refresh()
        for op in self.ops.values():
            op.cancel()
        if self.relay is not None:
            self.relay.close()
        side, why = _blame(exc, self.ops, self.target_refused(exc))
        errors = {role: op.err for role, op in self.ops.items() if op.err and not op.cancelled}
        if isinstance(exc, SideFailure):
            errors[exc.role] = _words(exc.exc)
        elif isinstance(exc, APIException) and side not in errors:
            errors[side] = exc.error
        full = self._full_pool(errors)
        if full:
            side, why = "target", full
        elif self._source_gone():
            side, why = "source", (f"{self.job.what} was deleted on the source during the "
                                   "copy (LXD lets a delete through before the migration has "
                                   "locked it)")
        elif _about_connecting(errors.get(side, "")):
            why = self._connecting_hint(side) or why
        created = "target" in self.ops or self._create_unanswered(exc)
        left = self.remove() if created else None
        peer = self.source if side == "source" else self.target
        other = "target" if side == "source" else "source"
        message = (f"{self.mode} {self.job.what} from {self.source.client.endpoint.display} "
                   f"to {self.target.client.endpoint.display} failed on {peer}: ")
        said = errors.get(side)
        if said and why and why != said:
            message += f"{why}. It said: {gist(said)}"
        else:
            message += gist(said or why)
        if errors.get(other):
            message += f"; the {other} said: {gist(errors[other])}"
        if not created:
            message += "; nothing was created on the target"
        elif left:
            message += f"; left on the target, remove it once the target answers: {left}"
        else:
            message += "; nothing is left on the target"
        return MigrationError(message, side=side, source_error=errors.get("source"),
                              target_error=errors.get("target"), left_behind=left)

    def _connecting_hint(self, side: str) -> Optional[str]:
        """Who connected to whom, for a failure to connect between the daemons."""
        if self.mode == "pull" and side == "target":
            return (f"in pull mode the target's daemon connects to the source at "
                    f"{self.source.address} and pins the certificate the source presents to "
                    "apitx: it must reach that address and see that certificate "
                    "(mode='relay' needs neither)")
        if self.mode == "push" and side == "source":
            return (f"in push mode the source's daemon connects to the target at "
                    f"{self.target.address} and pins the certificate the target presents to "
                    "apitx: it must reach that address and see that certificate "
                    "(mode='relay' needs neither)")
        return None

    def _create_failed(self, exc: BaseException) -> bool:
        """True when the target's create request itself failed."""
        return isinstance(exc, SideFailure) and exc.role == "target" and \
            "target" not in self.ops

    def _create_unanswered(self, exc: BaseException) -> bool:
        """True when the target's create request went out but no answer came
        back: its daemon may have made the object before it broke (measured:
        lxd2 killed while answering a pull's POST was back with the
        instance). A pinned certificate that did not match sent nothing."""
        return isinstance(exc, SideFailure) and self._create_failed(exc) and \
            isinstance(exc.exc, (APIConnectionError, APITimeoutError)) and \
            not isinstance(exc.exc, CertificateMismatch)

    def target_refused(self, exc: BaseException) -> bool:
        """True when the target refused the create request itself."""
        return self._create_failed(exc) and not self._create_unanswered(exc)

    def _source_gone(self) -> bool:
        """True when the object is no longer on the source (deleted meanwhile)."""
        try:
            return self.source.client.request("GET", self.job.source_url,
                                              validate=False).status_code == 404
        except APITXError:
            return False  # unreachable: _blame has said so

    def _pool_free(self) -> Optional[int]:
        """Free bytes in the target's pool, when it says (for :meth:`_full_pool`)."""
        if not self.job.target_pool:
            return None
        try:
            answer = self.target.client.request(
                "GET", f"storage-pools/{self.job.target_pool}/resources", validate=False)
        except APITXError:
            return None
        space = (answer.metadata or {}).get("space") if answer.ok else None
        if not isinstance(space, dict) or not space.get("total"):
            return None
        return int(space["total"]) - int(space.get("used") or 0)

    def _full_pool(self, errors: Dict[str, str]) -> Optional[str]:
        """Why the target's pool is the likely cause, or None.

        rsync's receiver says "No space left on device", but LXD 5.0.2
        passes the sender's "Broken pipe" instead in pull and push mode
        (measured): so a failure in rsync after at least as many bytes as
        the pool had free is put down to the pool too.
        """
        words = " ".join(errors.values())
        pool = self.job.target_pool
        if any(mark in words for mark in _TARGET_FULL):
            return f"the target's pool {pool or ''} is full".replace("  ", " ")
        free = self.target_free
        if free is None or "sync" not in words:
            return None
        sent = self.reader.counted
        if sent >= free:
            return (f"the target's pool {pool} is full: it had {readable_size(free)} free, "
                    f"and {readable_size(sent)} had been sent when the copy broke")
        if free < 1 << 30:
            return (f"rsync broke, and the target's pool {pool} had only "
                    f"{readable_size(free)} free: a pool that fills up fails this way on LXD "
                    "(its rsync's 'No space left' is not passed on)")
        return None


def _words(exc: BaseException) -> str:
    return full_words(exc)


def full_words(exc: BaseException) -> str:
    """A server's whole message for ``exc``: a failed operation's ``err`` (or
    Incus's ``error`` for it), not cut as ``APIException.error`` is, since
    rsync puts the cause at the end ("No space left on device"); secrets
    redacted, one line."""
    if isinstance(exc, APIException):
        data = exc.result.data if isinstance(exc.result.data, dict) else {}
        state = exc.result.metadata if isinstance(exc.result.metadata, dict) else {}
        whole = state.get("err") or data.get("error")
        if whole:
            return redact_free_text(" ".join(str(whole).split()))
        return exc.error
    return str(exc)


def gist(words: str, limit: int = 400) -> str:
    """``words`` for a message: whole when short, else its start and its end
    (where rsync and the filesystem say what went wrong).

    >>> gist('x' * 1000, 20)
    'xxxxxxxx … xxxxxxxx'
    """
    if len(words) <= limit:
        return words
    half = (limit - 3) // 2
    return f"{words[:half]} … {words[-half:]}"


def _about_connecting(words: str) -> bool:
    """True for a daemon's failure to reach or trust the other daemon."""
    return any(mark in words for mark in ("Unable to connect", "connection refused", "x509",
                                          "certificate", "tls:", "no route to host"))


def _blame(exc: BaseException, ops: Dict[str, _Op], target_refused: bool) -> Tuple[str, str]:
    """``(side, why)``: which side is at fault for ``exc``.

    In order: a request to one side that failed (it refused, or could not
    be reached) is that side's; then a side that no longer answers (its
    daemon died: the other's operation failed because its peer left); then
    the one operation that failed on its own (not cancelled by apitx); when
    both did, the one that failed first, by the servers' clocks (one
    machine's, or synchronised ones).
    """
    if target_refused:
        return "target", "it refused to create the copy"
    if isinstance(exc, SideFailure):
        return exc.role, _words(exc.exc)
    gone = [op for op in ops.values() if op.status == "Unreachable"]
    if len(gone) == 1:
        return gone[0].peer.role, gone[0].err
    failed = [op for op in ops.values() if op.status == "Failure" and not op.cancelled]
    if len(failed) == 1:
        return failed[0].peer.role, failed[0].err
    if len(failed) == 2:
        first = min(failed, key=lambda op: op.ended_at or "~")
        return first.peer.role, first.err
    return "target", _words(exc)

