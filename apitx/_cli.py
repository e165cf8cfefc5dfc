"""The ``apitx`` command: ``lxc query`` with tracing, curl export, progress and binary output.

Built only on apitx's public library: :class:`API` sends, :class:`APIResult`
validates and waits, apitx's exceptions choose the exit code. stdout carries
only the result; every message goes to stderr as one line.

Example::

    $ apitx instances                                # GET /1.0/instances, prints metadata
    $ apitx -X PUT -d '{"action": "start"}' --wait instances/c1/state
    $ apitx -o rootfs.tar.gz images/<fingerprint>/export
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import shutil
import sys
import tempfile
import traceback
from contextlib import ExitStack, contextmanager
from typing import IO, Any, Dict, Iterator, List, Optional, Sequence, Tuple

from . import (
    API,
    APIConnectionError,
    APIException,
    APIResult,
    APITimeoutError,
    APITXError,
    EndpointError,
    RequestError,
    SettingsError,
    StderrHandler,
    __version__,
)

EXIT_OK = 0
EXIT_API_ERROR = 1
EXIT_USAGE = 2
EXIT_CONNECT = 3
EXIT_TIMEOUT = 4
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141

#: Response bodies are copied to files and pipes in pieces of this size, so a
#: file pull of any size holds only this much of it in memory.
CHUNK = 1 << 16

EXAMPLES = """\
examples:
  apitx ''                                    GET /1.0 (the server's description)
  apitx instances -p recursion=1              GET /1.0/instances?recursion=1
  apitx -X POST -d @c1.json --wait instances  create an instance and wait for it
  apitx -X PUT -d '{"action": "stop"}' --wait --timeout 60 instances/c1/state
  apitx -X DELETE instances/c1 --wait --cancel-on-interrupt
  apitx -o hosts.txt 'instances/c1/files?path=/etc/hosts'            pull a file
  apitx -X POST -H 'X-LXD-type: file' --data-binary @big.img \\
        'instances/c1/files?path=/root/big.img'                      push a file
  apitx --curl -X POST -d @c1.json instances  print the curl command, send nothing
  apitx -e https://10.0.0.5:8443 --cert client.crt --key client.key \\
        --cacert server.crt --project web instances

exit codes:
  0    ok
  1    the API answered an error, or the operation failed
  2    usage error or bad input (bad JSON, unreadable file, ...)
  3    cannot connect to the server
  4    timeout (--wait --timeout, or no answer in time)
  130  interrupted (Ctrl-C); a --wait names the operation still running
  141  stdout was closed early (apitx ... | head), as for SIGPIPE
"""


class UsageError(Exception):
    """Bad input from the command line, found before anything is sent (exit 2)."""


class _Interrupted(Exception):
    """Ctrl-C during --wait: the message says what became of the operation."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``apitx`` command."""
    parser = argparse.ArgumentParser(
        prog="apitx", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES,
        description=(
            "Send one request to LXD (or an LXD-style API) and print the result:\n"
            "a better `lxc query`, with tracing, curl export, progress and binary output.\n"
            "PATH is '' (/1.0), relative ('instances' is /1.0/instances) or absolute\n"
            "('/1.0/instances')."))
    parser.add_argument("path", metavar="PATH", help="the API path")
    parser.add_argument("-X", "--request", metavar="METHOD", default="GET",
                        help="the HTTP method (default GET)")
    body = parser.add_mutually_exclusive_group()
    body.add_argument("-d", "--data", metavar="DATA",
                      help="a JSON body: JSON text, @FILE, or @- for stdin; checked before "
                           "anything is sent")
    body.add_argument("--data-binary", metavar="@FILE",
                      help="a raw body streamed from FILE (not loaded into memory)")
    parser.add_argument("-H", "--header", metavar="'NAME: VALUE'", action="append", default=[],
                        help="an extra request header (repeatable)")
    parser.add_argument("-p", "--param", metavar="KEY=VALUE", action="append", default=[],
                        help="a query string parameter (repeatable)")
    parser.add_argument("--project", metavar="NAME", help="add project=NAME to the query")
    parser.add_argument("--wait", action="store_true",
                        help="wait for the returned operation to end; print it")
    parser.add_argument("--timeout", metavar="SECONDS", type=_seconds,
                        help="with --wait: give up after SECONDS (exit 4)")
    parser.add_argument("--cancel-on-interrupt", action="store_true",
                        help="with --wait: on Ctrl-C, cancel the operation (when LXD allows)")
    parser.add_argument("--raw", action="store_true",
                        help="print the whole JSON envelope, not only its metadata")
    parser.add_argument("--compact", action="store_true", help="print JSON on one line")
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="write the result (JSON or raw bytes) to FILE, streamed; "
                             "-o - writes raw bytes to stdout even if it is a terminal")
    parser.add_argument("-e", "--endpoint", metavar="SOCKET|URL",
                        help="a socket path, unix:///path or https://host:8443 "
                             "(default: the local LXD, found as `lxc` finds it)")
    parser.add_argument("--cert", metavar="FILE", help="HTTPS: the client certificate")
    parser.add_argument("--key", metavar="FILE", help="HTTPS: the client certificate's key")
    parser.add_argument("--cacert", metavar="FILE",
                        help="HTTPS: the server certificate (or CA bundle) to trust")
    parser.add_argument("--curl", action="store_true",
                        help="print the request as a runnable curl command; send nothing")
    parser.add_argument("-v", "--debug", action="store_true",
                        help="trace every request and response to stderr; tracebacks on errors")
    parser.add_argument("--version", action="version", version=f"apitx {__version__}")
    return parser


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds >= 0")
    return value


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command; return its exit code (the console script exits with it)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help and --version (0), usage errors (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    stderr = sys.stderr
    try:
        return _run(args)
    except (APITXError, UsageError, _Interrupted) as exc:
        return _fail(args, str(exc), _exit_code(exc))
    except KeyboardInterrupt:
        return _fail(args, "interrupted", EXIT_INTERRUPTED)
    except BrokenPipeError:
        # The reader went away (apitx ... | head): nothing left to tell anyone;
        # exit as a process killed by SIGPIPE does.
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    finally:
        stderr.flush()


#: The exit code of each failure, most specific class first.
_EXIT_CODES = (
    (UsageError, EXIT_USAGE),
    (SettingsError, EXIT_USAGE),
    (EndpointError, EXIT_USAGE),
    (RequestError, EXIT_USAGE),
    (APITimeoutError, EXIT_TIMEOUT),  # OperationTimeout too
    (APIConnectionError, EXIT_CONNECT),
    (APIException, EXIT_API_ERROR),
    (_Interrupted, EXIT_INTERRUPTED),
)


def _exit_code(exc: BaseException) -> int:
    return next((code for kind, code in _EXIT_CODES if isinstance(exc, kind)), EXIT_API_ERROR)


def _fail(args: argparse.Namespace, message: str, code: int) -> int:
    if args.debug:
        traceback.print_exc(file=sys.stderr)
    sys.stderr.write(f"apitx: {message}\n")
    return code


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


# -- the request -----------------------------------------------------------------

def _run(args: argparse.Namespace) -> int:
    if args.timeout is not None and not args.wait:
        raise UsageError("--timeout applies to --wait: add --wait, or drop --timeout")
    if args.cancel_on_interrupt and not args.wait:
        raise UsageError("--cancel-on-interrupt applies to --wait: add --wait")
    method = args.request.strip().upper()
    if not method.isalpha():
        raise UsageError(f"-X {args.request!r} is not an HTTP method (GET, POST, PUT, ...)")
    headers = _parse_headers(args.header)
    params = _parse_params(args.param)
    if args.project is not None:
        params.append(("project", args.project))
    with ExitStack() as stack:
        if args.debug:
            stack.enter_context(_trace_to_stderr())
        body, content_type = _request_body(args, stack)
        if content_type and not any(name.lower() == "content-type" for name in headers):
            headers["Content-Type"] = content_type
        api = stack.enter_context(API.factory(args.endpoint, debug=args.debug,
                                              **_tls_options(args)))
        api.url(args.path)  # a full URL given as PATH is a usage error, before any output
        if args.curl:
            return _print_curl(api, method, args, headers, params, body)
        output = _open_output(args.output, stack) if args.output else None
        result = api.request(method, args.path, validate=False, stream=True,
                             headers=headers, params=params, data=body)
        stack.callback(result.response.close)
        if result.data is None:
            return _write_body(result.validate(), output, args)
        if args.wait:
            result = _wait(api, result, args)
        else:
            result.validate()
        _write_json(result.data if args.raw else result.metadata, output, args)
        return EXIT_OK


@contextmanager
def _trace_to_stderr() -> Iterator[None]:
    """Send the ``apitx`` logger's trace to stderr, and only there.

    The command is the application, so it owns logging: without this the
    library's trace would go wherever a host's root handlers point (or be
    printed twice). Restored afterwards, so ``main()`` can run in process.
    """
    logger = logging.getLogger("apitx")
    handler = StderrHandler()  # the library's: colour on a terminal, NO_COLOR honoured
    saved = (logger.level, logger.propagate)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def _parse_headers(values: List[str]) -> Dict[str, str]:
    headers: Dict[str, str] = {}
    for value in values:
        name, sep, content = value.partition(":")
        if not sep or not name.strip() or any(c.isspace() for c in name.strip()):
            raise UsageError(f"-H {value!r} is not a header: write it as 'Name: value'")
        headers[name.strip()] = content.strip()
    return headers


def _parse_params(values: List[str]) -> List[Tuple[str, str]]:
    params = []
    for value in values:
        key, sep, content = value.partition("=")
        if not sep or not key:
            raise UsageError(f"-p {value!r} is not a parameter: write it as key=value")
        params.append((key, content))
    return params


def _request_body(args: argparse.Namespace, stack: ExitStack) -> Tuple[Any, Optional[str]]:
    """The body to send and its default Content-Type."""
    if args.data is not None:
        text = _read_data(args.data)
        try:
            json.loads(text)
        except ValueError as exc:
            where = (f" at line {exc.lineno}, column {exc.colno}"
                     if isinstance(exc, json.JSONDecodeError) else "")
            raise UsageError(f"-d: invalid JSON{where}: "
                             f"{getattr(exc, 'msg', exc)}; nothing was sent") from None
        return text.encode("utf-8"), "application/json"
    if args.data_binary is not None:
        if not args.data_binary.startswith("@") or args.data_binary in ("@", "@-"):
            raise UsageError(f"--data-binary {args.data_binary!r}: give a file as @FILE "
                             "(its bytes are streamed; for JSON text use -d)")
        # requests streams an open file in blocks and takes its length from
        # fstat: the file is never loaded into memory.
        return stack.enter_context(_open(args.data_binary[1:], "rb", "--data-binary")), \
            "application/octet-stream"
    return None, None


def _read_data(value: str) -> str:
    if value == "@-":
        return sys.stdin.read()
    if value.startswith("@"):
        with _open(value[1:], "r", "-d") as handle:
            try:
                return handle.read()
            except UnicodeDecodeError as exc:
                raise UsageError(f"-d {value}: not UTF-8 text ({exc.reason}); for raw "
                                 "bytes use --data-binary") from None
    return value


def _open(path: str, mode: str, option: str) -> IO[Any]:
    try:
        return open(path, mode, encoding="utf-8" if "b" not in mode else None)
    except OSError as exc:
        raise UsageError(f"{option} {path}: {exc.strerror}") from None


def _open_output(path: str, stack: ExitStack) -> IO[bytes]:
    """The -o destination, prepared before the request so a bad path costs nothing.

    ``-o -`` is stdout, even a terminal: the user asked for the bytes there.
    A file is written beside its final name and takes that name only when the
    command succeeds: a failed or interrupted pull leaves the previous file
    as it was.
    """
    if path == "-":
        return sys.stdout.buffer
    return stack.enter_context(_replacing(path))


@contextmanager
def _replacing(path: str) -> Iterator[IO[bytes]]:
    if os.path.isdir(path):
        raise UsageError(f"-o {path}: is a directory; give a file name")
    try:
        fd, temporary = tempfile.mkstemp(prefix=".apitx-", dir=os.path.dirname(path) or ".")
    except OSError as exc:
        raise UsageError(f"-o {path}: {exc.strerror}") from None
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)  # as open() would create it, not mkstemp's 0600
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
    except BaseException:
        os.unlink(temporary)
        raise
    os.replace(temporary, path)


def _tls_options(args: argparse.Namespace) -> Dict[str, Any]:
    options: Dict[str, Any] = {}
    if args.key and not args.cert:
        raise UsageError("--key needs --cert")
    if args.cert:
        options["cert"] = (args.cert, args.key) if args.key else args.cert
    if args.cacert:
        options["verify"] = args.cacert
    return options


def _print_curl(api: API, method: str, args: argparse.Namespace, headers: Dict[str, str],
                params: List[Tuple[str, str]], body: Any) -> int:
    try:
        command = api.curl(method, args.path, headers=headers, params=params, data=body)
    except RequestError as exc:
        raise UsageError(f"--curl: {exc}") from None
    if args.output:
        command += f" -o {shlex.quote(args.output)}"
    sys.stdout.write(command + "\n")
    return EXIT_OK


# -- the answer ------------------------------------------------------------------

def _write_json(value: Any, output: Optional[IO[bytes]], args: argparse.Namespace) -> None:
    if value is None and not args.raw:
        return  # as lxc query: an answer with no metadata prints nothing
    if args.compact:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    else:
        text = json.dumps(value, ensure_ascii=False, indent=4)
    data = (text + "\n").encode("utf-8")
    if output is not None:
        output.write(data)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()


def _write_body(result: APIResult, output: Optional[IO[bytes]],
                args: argparse.Namespace) -> int:
    """Copy a non-JSON answer (a file pull, an image export) to -o or a pipe, streamed."""
    if output is None:
        if sys.stdout.isatty():
            if result.response.headers.get("Content-Length") == "0":
                return EXIT_OK
            kind = result.response.headers.get("Content-Type") or "no Content-Type"
            raise UsageError(f"{result.request_line()}: the answer is not JSON ({kind}): "
                             "not written to a terminal; use -o FILE, -o - or a pipe")
        sys.stdout.flush()
        output = sys.stdout.buffer
    for chunk in result.iter_content(CHUNK):  # a broken download raises apitx's errors
        output.write(chunk)
    output.flush()
    return EXIT_OK


# -- --wait ----------------------------------------------------------------------

def _wait(api: API, result: APIResult, args: argparse.Namespace) -> APIResult:
    """Wait for the operation, with a live progress line when stderr is a terminal.

    Ctrl-C stops waiting and names the operation (cancelling it with
    --cancel-on-interrupt); a timeout raises OperationTimeout, which names it.
    """
    progress = ProgressLine(sys.stderr) if sys.stderr.isatty() else None
    try:
        if progress is None:
            return result.wait(args.timeout)
        progress.show(result.metadata, 0.0)
        return result.wait(args.timeout, progress=progress.update)
    except KeyboardInterrupt:
        raise _Interrupted(_interrupted_message(api, result, args.cancel_on_interrupt)) from None
    finally:
        if progress is not None:
            progress.clear()


def _interrupted_message(api: API, result: APIResult, cancel: bool) -> str:
    where = result.locate(result.operation or "")
    if not cancel:
        return (f"interrupted; operation still running: {where} (wait on it with "
                f"apitx --wait {result.operation}, or cancel it with "
                f"apitx -X DELETE {result.operation})")
    try:
        answer = api.delete(result.operation or "", validate=False)
    except (APIConnectionError, APITimeoutError) as exc:
        return f"interrupted; could not cancel operation {where}: {exc}"
    if answer.ok:
        return f"interrupted; cancelled operation {where}"
    return (f"interrupted; LXD did not cancel operation {where}: "
            f"{_api_error(answer)}; it is still running")


def _api_error(answer: APIResult) -> str:
    try:
        answer.validate()
    except APIException as exc:
        return exc.error
    return "?"  # pragma: no cover - only called on a failed answer


class ProgressLine:
    """One status line on a terminal, rewritten in place and cleared at the end.

    Shows the operation's description, the time waited, and LXD's progress
    metadata when the operation has some (``Unpack: 42%``).

    >>> ProgressLine(sys.stderr).show({'description': 'Creating instance'}, 3.2)
    """

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.shown = False

    def show(self, operation: Any, elapsed: float) -> None:
        width = shutil.get_terminal_size((80, 24)).columns - 1
        text = progress_text(operation, elapsed)[:max(width, 10)]
        # \r back to the line start, ESC[K erases it: the line never wraps
        # (it is cut to the terminal's width), so this clears all of it.
        self.stream.write(f"\r\x1b[K{text}")
        self.stream.flush()
        self.shown = True

    def update(self, answer: APIResult) -> None:
        """A ``wait(progress=...)`` callback: show the operation as an answer
        of the wait reports it."""
        self.show(answer.metadata, answer.waited or 0.0)

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = False


def progress_text(operation: Any, elapsed: float) -> str:
    """``Creating instance 3s Unpack: 42%``: what a progress line says.

    LXD reports progress in the operation's ``metadata`` under keys ending in
    ``_progress`` (``download_progress``, ``create_instance_from_image_unpack_progress``,
    ``fs_progress``...), as text such as ``Unpack: 42% (12.3MB/s)``; newer LXD
    also sends a ``progress`` object (``stage``, ``percent``).
    """
    op = operation if isinstance(operation, dict) else {}
    parts = [str(op.get("description") or "Waiting for the operation"), f"{elapsed:.0f}s"]
    metadata = op.get("metadata")
    if isinstance(metadata, dict):
        for key in sorted(metadata):
            value = metadata[key]
            if key.endswith("_progress") and isinstance(value, str) and value:
                parts.append(value)
            elif key == "progress" and isinstance(value, dict):
                parts.append(" ".join(f"{k}: {v}" for k, v in sorted(value.items())))
    return " ".join(parts)
