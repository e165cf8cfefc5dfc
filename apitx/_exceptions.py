"""Every error apitx raises, and nothing else.

The tree::

    APITXError                          root: catch this to catch everything of ours
    ├── SettingsError(ValueError)       a setting (argument or APITX_*/DEBUG variable)
    │   │                               that cannot be used, named with what to give
    │   └── SettingsTypeError(TypeError) ... of the wrong type
    ├── EndpointError(ValueError)       an endpoint string we cannot understand
    ├── LocalFileError(OSError)         a local file apitx was asked to write could not be
    ├── RequestError(ValueError)        a request that cannot be sent as given: nothing sent
    │   └── RequestTypeError(TypeError) ... an argument of the wrong type
    ├── ResponseTooLarge                an answer larger than apitx reads (max_answer_bytes)
    ├── MissingExtension                the server lacks an API extension the
    │                                   caller requires (api.require)
    ├── APIException                    the server answered, and the answer is an error
    │   └── APINotFoundException        ... HTTP 404, or error_code 404
    ├── APIConnectionError              no answer: no socket, refused, permission
    │   │                               denied, TLS failure, connection broken mid-answer
    │   └── CertificateMismatch         ... the server's certificate is not the pinned one
    ├── APITimeoutError(TimeoutError)   no answer in time (connect or read)
    │   └── OperationTimeout            an LXD operation still runs when wait() gives up
    │       └── ExecTimeout             an exec ran past its timeout= and was killed
    ├── ExecError                       ExecResult.check(): a command exited non-zero
    └── MigrationError                  a copy or move between two servers failed: which
                                        side, why, and what was cleaned up

    Signalled(KeyboardInterrupt)        outside the tree on purpose: SIGTERM or SIGHUP
                                        turned into an interruption (apitx.raising_on)

No exception of ``requests``, ``urllib3`` or ``socket`` escapes apitx: the
transport layer translates them into the classes above and keeps the
original as ``__cause__``, so nothing is lost for a traceback.

This module is the bottom layer: it imports nothing of apitx and knows
nothing of LXD. An exception that carries a result asks the result for its
words (``request_line()``, ``server_message()``, ``transaction()``); every
other message is written by the layer that raises.

>>> from apitx import API, APIException, APINotFoundException
>>> api = API.factory()
>>> try:
...     api.get('instances/nope')
... except APINotFoundException as e:
...     print('create it:', e.error)
create it: Instance not found
>>> try:
...     api.patch(f'instances/{c1}', json={'config': {'limits.cpu': 'banana'}})
... except APIException as e:
...     print(e.status_code, e.error)       # the server's own message
500 Invalid config: ...
"""

from __future__ import annotations

from typing import Any, List, Optional, Protocol, Tuple


class Transaction(Protocol):
    """What an exception knows of the result it carries (an
    :class:`~apitx.APIResult`): declared here, at the bottom, so that this
    module imports nothing of apitx, not even for type hints."""

    @property
    def status_code(self) -> int: ...

    @property
    def data(self) -> Any: ...

    @property
    def metadata(self) -> Any: ...

    @property
    def operation(self) -> Optional[str]: ...

    @property
    def response(self) -> Any: ...

    @property
    def request(self) -> Any: ...

    def request_line(self) -> str: ...

    def server_message(self, node: Any = None) -> str: ...

    def transaction(self) -> str: ...

    def locate(self, path: str) -> str: ...


class APITXError(Exception):
    """Root of every exception apitx raises."""

    #: For a request that got no answer (connection and timeout errors):
    #: False when it failed before anything was sent (the connection was
    #: refused or never made), True when it failed after (it may or may not
    #: have been applied), None when that is unknown or not the question.
    sent: Optional[bool] = None


class SettingsError(APITXError, ValueError):
    """A setting apitx cannot use: an argument such as ``trace=``, or an
    environment variable such as ``APITX_DEBUG_MAX_BODY``. Raised when the
    :class:`~apitx.API` is made, never later inside error handling; the
    message names the setting, the value and what to give instead."""


class SettingsTypeError(SettingsError, TypeError):
    """A setting of the wrong type (``timeout=[1, 2]``): a
    :class:`SettingsError` and a ``TypeError``."""


class EndpointError(APITXError, ValueError):
    """An endpoint (or a URL given to the API) that apitx cannot use.

    Raised before anything is sent, with the text that was wrong and the forms
    that are accepted.
    """


class LocalFileError(APITXError, OSError):
    """A local file apitx was asked to write could not be written: the path
    cannot be used (a directory, a missing folder, a symlink loop, no
    permission) or the disk refused the bytes (full, too large).

    An ``OSError`` with ``errno``, ``strerror`` and ``filename`` (the path as
    the caller gave it). Raised by :func:`~apitx.atomic_write`, so by every
    writer built on it (``Files.pull`` to a path, saving a remote): any
    previous file at that path is as it was.

    >>> import errno
    >>> from apitx import LocalFileError
    >>> str(LocalFileError(errno.ENOSPC, 'No space left on device', 'out.bin'))
    'cannot write out.bin: No space left on device'
    """

    def __str__(self) -> str:
        return f"cannot write {self.filename}: {self.strerror}"


class _HasResult:
    """For exceptions that carry the :class:`APIResult` they were raised for."""

    result: Transaction

    @property
    def transaction(self) -> str:
        """The failing transaction as the text trace shows it, secrets redacted:
        what to put in a log or a bug report. Rendered with the settings the
        API was made with, so reading it never raises."""
        return self.result.transaction()


class RequestError(APITXError, ValueError):
    """A request that cannot be sent as the caller gave it: a header value
    with CR/LF, a ``json=`` body JSON cannot encode, a malformed URL. Nothing
    was sent; the message names what to change (never a header's value)."""


class RequestTypeError(RequestError, TypeError):
    """A request argument of the wrong type (``wait(timeout='5')``, a method
    that is not a string): a :class:`RequestError` and a ``TypeError``."""


class ResponseTooLarge(APITXError):
    """An answer apitx reads for the caller (JSON, an error's detail, a
    websocket message) is larger, once decompressed, than the API's
    ``max_answer_bytes``: a compressed or endless answer must not exhaust
    memory. The message names the request and the limit; the connection is
    closed."""


class MissingExtension(APITXError):
    """The server lacks API extensions the caller needs (``api.require``).

    ``server`` is its name (``'lxd'``, ``'incus'``), ``version`` its version,
    ``missing`` the extensions it lacks; the message says which server, where,
    and what is missing. Raised before anything that needs them is sent.
    """

    def __init__(self, message: str, *, server: str, version: Optional[str],
                 missing: Tuple[str, ...]) -> None:
        self.server = server
        self.version = version
        self.missing = missing
        super().__init__(message)


class APIException(_HasResult, APITXError):
    """The server answered, and the answer is an error.

    ``result`` is the :class:`APIResult` of the failing transaction,
    ``status_code`` the status that failed (HTTP status, or the failing
    operation's ``status_code`` when the failure is nested in an operation) and
    ``error`` the server's own message.

    ``str()`` is one line, ``METHOD URL: message``:

    >>> from apitx import API, APIException
    >>> api = API.factory()
    >>> try:
    ...     api.get('instances/nope')
    ... except APIException as e:
    ...     print(e)
    GET unix:/var/lib/lxd/unix.socket /1.0/instances/nope: Instance not found

    For an operation that failed after the request that started it was
    accepted (HTTP 202), it names that request and the operation, and
    ``started`` holds that request's answer:

    >>> try:
    ...     api.post('instances', json={'name': c2, 'config': {'limits.cpu': 'banana'},
    ...              'source': {'type': 'image', 'alias': 'apitx-busybox'}}).wait(timeout=60)
    ... except APIException as e:
    ...     print(e)
    ...     print(e.started.status_code)
    POST unix:/var/lib/lxd/unix.socket /1.0/instances: operation ... (GET unix:/var/lib/lxd/unix.socket
    /1.0/operations/.../wait?timeout=30) failed: Failed creating instance record: ...
    202
    """

    def __init__(self, result: Transaction, error: Optional[str] = None,
                 status_code: Optional[int] = None, *,
                 started: Optional[Transaction] = None) -> None:
        self.result = result
        self.status_code = result.status_code if status_code is None else status_code
        self.error = error if error is not None else result.server_message()
        #: For a failed operation: the answer to the request that started it
        #: (``result`` is then the poll that found it failed), else None.
        self.started = started
        if started is None or started is result:
            super().__init__(f"{result.request_line()}: {self.error}")
        else:
            operation = (started.operation or "").partition("?")[0].rsplit("/", 1)[-1]
            super().__init__(f"{started.request_line()}: operation {operation or '?'} "
                             f"({result.request_line()}) failed: {self.error}")

    def started_by(self, started: Transaction) -> APIException:
        """This failure of an operation, naming the request that started it
        too: what the caller sent, and the operation (``wait()`` raises this)."""
        if self.started is not None:
            return self
        return type(self)(self.result, self.error, self.status_code, started=started)


class APINotFoundException(APIException):
    """HTTP 404, or an LXD envelope with ``error_code`` 404."""


class APIConnectionError(APITXError):
    """The server could not be reached, or the connection broke mid-answer.

    The message names the endpoint and the likely fix. ``endpoint`` is the
    readable endpoint (``unix:/var/lib/lxd/unix.socket``) when one is known.
    """

    def __init__(self, message: str, endpoint: Optional[str] = None) -> None:
        self.endpoint = endpoint
        super().__init__(message)


class CertificateMismatch(APIConnectionError):
    """A pinned endpoint presented another certificate; nothing was sent.

    ``seen`` and ``expected`` are ``sha256:<hex>`` fingerprints (``expected``
    may list several, joined by ``" or "``).
    """

    def __init__(self, message: str, endpoint: Optional[str] = None, seen: str = "",
                 expected: str = "") -> None:
        self.seen = seen
        self.expected = expected
        super().__init__(message, endpoint=endpoint)


class APITimeoutError(APITXError, TimeoutError):
    """No answer in time: connecting, or reading the response."""


class OperationTimeout(_HasResult, APITimeoutError):
    """``wait(timeout)`` gave up while the operation still runs.

    ``result`` is the last answer of the operation (still running), so the
    caller can read its ``operation`` URL, wait again, or cancel it.
    """

    def __init__(self, result: Transaction, waited: float) -> None:
        self.result = result
        self.waited = waited
        operation = result.operation or ""
        super().__init__(
            f"operation {operation.partition('?')[0].rsplit('/', 1)[-1] or '?'} still running after "
            f"{waited:.1f}s: {result.locate(operation)} "
            "(wait on it again, or DELETE it to cancel)")


class ExecTimeout(OperationTimeout):
    """An exec ran past its ``timeout=`` and was killed (SIGKILL over the
    control websocket). ``stdout`` and ``stderr`` hold what it wrote before;
    ``result`` is the exec's operation, ``waited`` the timeout."""

    def __init__(self, message: str, result: Transaction, waited: float, command: List[str],
                 stdout: bytes, stderr: bytes) -> None:
        self.result, self.waited, self.command = result, waited, command
        self.stdout, self.stderr = stdout, stderr
        APITimeoutError.__init__(self, message)


class ExecError(APITXError):
    """A command run by exec exited non-zero (raised by ``ExecResult.check()``).

    ``return_code`` is its exit code and ``stderr`` all it wrote there.
    """

    def __init__(self, message: str, command: List[str], return_code: int,
                 stderr: bytes) -> None:
        self.command, self.return_code, self.stderr = command, return_code, stderr
        super().__init__(message)


class MigrationError(APITXError):
    """A copy, move, export or import (:mod:`apitx.migrate`) failed.

    ``side`` says which server failed: ``'source'`` or ``'target'``;
    ``source_error`` and ``target_error`` are each server's own words (its
    operation's ``err``, or the failure reaching it), None for a side that
    said nothing; ``left_behind`` names what may remain on the target when
    apitx could not remove it (None when nothing does). The message says all
    of it, and what was done about it. The original exception, when there
    is one, is ``__cause__``.
    """

    def __init__(self, message: str, *, side: str, source_error: Optional[str] = None,
                 target_error: Optional[str] = None,
                 left_behind: Optional[str] = None) -> None:
        self.side = side
        self.source_error = source_error
        self.target_error = target_error
        self.left_behind = left_behind
        super().__init__(message)


class Signalled(KeyboardInterrupt):
    """A signal :func:`raising_on` was asked to turn into an interruption.

    A ``KeyboardInterrupt``, so that it unwinds as Ctrl-C does (exec kills
    its command and all it started, then re-raises) and ``except Exception``
    does not swallow it; ``signum`` says which signal (exit ``128 + signum``).
    """

    def __init__(self, signum: int) -> None:
        # Imported here, not above: only raising_on() raises this, and it
        # has imported signal already; a program that never uses it should
        # not pay for signal's enums at import (issue 19).
        import signal

        self.signum = signum
        super().__init__(f"{signal.Signals(signum).name} received")


# Every exception above is public, re-exported as ``apitx.<Name>``: it says so
# where Python names it (a traceback's last line, ``repr``, pickling, the
# reference), so ``apitx.APINotFoundException: ... Instance not found`` is
# what a user reads and what they write in ``except`` and in doctests.
for _public in list(globals().values()):
    if isinstance(_public, type) and issubclass(_public, BaseException) and \
            _public.__module__ == __name__:
        _public.__module__ = "apitx"
del _public
