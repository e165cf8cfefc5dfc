"""Every error apitx raises, and nothing else.

The tree::

    APITXError                          root: catch this to catch everything of ours
    ├── EndpointError(ValueError)       an endpoint string we cannot understand
    ├── RequestError(ValueError)        a request that cannot be sent as given
    ├── APIException                    the server answered, and the answer is an error
    │   └── APINotFoundException        ... HTTP 404, or error_code 404
    ├── APIConnectionError              no answer: no socket, refused, permission
    │                                   denied, TLS failure, connection broken mid-answer
    ├── APITimeoutError(TimeoutError)   no answer in time (connect or read)
    │   └── OperationTimeout            an LXD operation still runs when wait() gives up
    │       └── ExecTimeout             an exec ran past its timeout= and was killed
    └── ExecError                       ExecResult.check(): a command exited non-zero

No exception of ``requests``, ``urllib3`` or ``socket`` escapes apitx: the
transport layer translates them into the classes above and keeps the
original as ``__cause__``, so nothing is lost for a traceback.

Example::

    try:
        api.get('instances/c1')
    except APINotFoundException:
        ...                                 # create it
    except APIException as e:
        print(e.status_code, e.error)       # the server's own message
"""

from __future__ import annotations

import re
import shlex
from typing import TYPE_CHECKING, Any, List, Optional

if TYPE_CHECKING:  # pragma: no cover - imports for type hints only
    from ._result import APIResult


class APITXError(Exception):
    """Root of every exception apitx raises."""


class EndpointError(APITXError, ValueError):
    """An endpoint (or a URL given to the API) that apitx cannot use.

    Raised before anything is sent, with the text that was wrong and the forms
    that are accepted.
    """


class _HasResult:
    """For exceptions that carry the :class:`APIResult` they were raised for."""

    result: APIResult

    @property
    def transaction(self) -> str:
        """The failing transaction as the text trace shows it, secrets redacted:
        what to put in a log or a bug report."""
        return self.result.transaction()


class RequestError(APITXError, ValueError):
    """A request that cannot be sent as the caller gave it: a header value
    with CR/LF, a ``json=`` body JSON cannot encode, a malformed URL. Nothing
    was sent; the message names what to change (never a header's value)."""


class APIException(_HasResult, APITXError):
    """The server answered, and the answer is an error.

    ``result`` is the :class:`APIResult` of the failing transaction,
    ``status_code`` the status that failed (HTTP status, or the failing
    operation's ``status_code`` when the failure is nested in an operation) and
    ``error`` the server's own message.

    ``str()`` is one line, ``METHOD URL: message``::

        GET unix:/var/lib/lxd/unix.socket /1.0/instances/c1: Instance not found
    """

    def __init__(self, result: APIResult, error: Optional[str] = None,
                 status_code: Optional[int] = None) -> None:
        self.result = result
        self.status_code = result.status_code if status_code is None else status_code
        self.error = error if error is not None else server_message(result)
        super().__init__(f"{result.request_line()}: {self.error}")


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


class APITimeoutError(APITXError, TimeoutError):
    """No answer in time: connecting, or reading the response."""


class OperationTimeout(_HasResult, APITimeoutError):
    """``wait(timeout)`` gave up while the operation still runs.

    ``result`` is the last answer of the operation (still running), so the
    caller can read its ``operation`` URL, wait again, or cancel it.
    """

    def __init__(self, result: APIResult, waited: float) -> None:
        self.result = result
        self.waited = waited
        operation = result.operation or ""
        super().__init__(
            f"operation {operation.rsplit('/', 1)[-1] or '?'} still running after "
            f"{waited:.1f}s: {result.api.endpoint.describe(operation)} "
            "(wait on it again, or DELETE it to cancel)")


class ExecTimeout(OperationTimeout):
    """An exec ran past its ``timeout=``: it was killed (SIGKILL over the
    control websocket). ``stdout`` and ``stderr`` hold what it wrote before."""

    def __init__(self, instance: str, command: List[str], timeout: float,
                 result: APIResult, stdout: bytes, stderr: bytes) -> None:
        self.result = result
        self.waited = timeout
        self.instance, self.command = instance, command
        self.stdout, self.stderr = stdout, stderr
        APITimeoutError.__init__(
            self, f"{shlex.join(command)} in {instance} still ran after {timeout:g}s and "
            f"was killed ({len(stdout)} bytes of stdout, {len(stderr)} of stderr kept); "
            "raise timeout= if it needs longer")


class ExecError(APITXError):
    """A command run by exec exited non-zero (raised by ``ExecResult.check()``).

    ``return_code`` is its exit code and ``stderr`` all it wrote there; the
    message ends with the last line of stderr.
    """

    def __init__(self, instance: str, command: List[str], return_code: int,
                 stderr: bytes) -> None:
        self.instance, self.command = instance, command
        self.return_code, self.stderr = return_code, stderr
        tail = stderr.decode("utf-8", "replace").strip().rsplit("\n", 1)[-1]
        super().__init__(f"{shlex.join(command)} in {instance} exited with {return_code}"
                         + (f": {_one_line(tail)}" if tail else " (no stderr)"))


_BODY_SNIPPET = 200
_SPACES = re.compile(r"\s+")


def server_message(result: APIResult, node: Any = None) -> str:
    """The server's own words for an error, as one line.

    LXD puts them in an operation's ``err`` (modern LXD also sends an empty
    top-level ``error`` on every answer, so ``err`` must win), else in the
    envelope's ``error``; a non-LXD server (a proxy's HTML page) gets a snippet
    of its body; an empty body gets the HTTP reason.
    """
    data = result.data
    for candidate in (node, result.metadata, data):
        if isinstance(candidate, dict) and candidate.get("err"):
            return _one_line(str(candidate["err"]))
    if isinstance(data, dict) and data.get("error"):
        return _one_line(str(data["error"]))
    text = result.response.text if result.body_read else ""
    if text.strip():
        return _one_line(text)
    return f"HTTP {result.status_code} {result.response.reason or ''}".rstrip()


def _one_line(text: str) -> str:
    text = _SPACES.sub(" ", text).strip()
    if len(text) > _BODY_SNIPPET:
        text = text[:_BODY_SNIPPET] + "…"
    return text
