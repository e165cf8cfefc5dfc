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
import re
import shlex
import shutil
import stat
import sys
import tempfile
import traceback
from contextlib import ExitStack, contextmanager
from typing import IO, Any, Callable, Dict, Iterator, List, NoReturn, Optional, Sequence, Tuple

from . import (
    API,
    APIConnectionError,
    APIException,
    APIResult,
    APITimeoutError,
    APITXError,
    RequestError,
    StderrHandler,
    Timeout,
    __version__,
)
from . import _cli_events, _cli_exec, _cli_remote
from ._cli_common import add_endpoint_options, tls_options
from ._exit import (EXIT_BROKEN_PIPE, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, EXIT_OUTPUT,
                    EXIT_USAGE, exit_code)

#: ``apitx NAME ...`` runs a subcommand instead of a request: the first word
#: is matched before anything else (an API path named like one is written
#: ``/1.0/remote``).
SUBCOMMANDS: Dict[str, Callable[[Sequence[str]], int]] = {
    "events": _cli_events.main,
    "exec": _cli_exec.main,
    "remote": _cli_remote.main,
}


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

subcommands (each with its own --help):
  apitx exec [options] INSTANCE -- COMMAND...   run a command, streams live; exits with its status
  apitx events [--type T] [--count N]            the server's events, like lxc monitor
  apitx remote add|list|remove                   remotes, kept as lxc and incus keep them

exit codes:
  0    ok
  1    the API answered an error, or the operation failed
  2    usage error or bad input (bad JSON, unreadable file, closed stdout, ...):
       nothing was sent
  3    cannot connect to the server
  4    timeout (--wait --timeout, or no answer in time)
  5    the result could not be written (disk full, ...): the request was sent
  70   internal error of apitx (-v shows the traceback)
  130  interrupted (Ctrl-C); a --wait names the operation still running
  141  stdout was closed early (apitx ... | head), as for SIGPIPE
"""


class UsageError(Exception):
    """Bad input from the command line, found before anything is sent (exit 2)."""


class _Interrupted(Exception):
    """Ctrl-C during --wait: the message says what became of the operation."""


class _OutputError(Exception):
    """The result could not be written (disk full, I/O error) after it was asked for (exit 5)."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``apitx`` command."""
    parser = argparse.ArgumentParser(
        prog="apitx", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES,
        add_help=False,
        description=(
            "Send one request to LXD (or an LXD-style API) and print the result:\n"
            "a better `lxc query`, with tracing, curl export, progress and binary output.\n"
            "PATH is '' (/1.0), relative ('instances' is /1.0/instances) or absolute\n"
            "('/1.0/instances')."))
    parser.add_argument("-h", "--help", action=_PrintAndExit, help="show this help and exit")
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
    parser.add_argument("--project", metavar="NAME",
                        help="add project=NAME to the query (of --wait's polls too)")
    parser.add_argument("--target", metavar="MEMBER",
                        help="add target=MEMBER to the query: the cluster member to act on")
    parser.add_argument("--wait", action="store_true",
                        help="wait for the returned operation to end; print it")
    parser.add_argument("--timeout", metavar="SECONDS", type=_seconds,
                        help="with --wait: give up after SECONDS (exit 4)")
    parser.add_argument("--max-time", metavar="SECONDS", type=_seconds,
                        help="give up on any one request after SECONDS in all, however the "
                             "server sends (exit 4; default 300, or more for long polls)")
    parser.add_argument("--cancel-on-interrupt", action="store_true",
                        help="with --wait: on Ctrl-C, cancel the operation (when LXD allows)")
    parser.add_argument("--raw", action="store_true",
                        help="print the whole JSON envelope, not only its metadata")
    parser.add_argument("--compact", action="store_true", help="print JSON on one line")
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="write the result (JSON or raw bytes) to FILE, streamed; "
                             "-o - writes raw bytes to stdout even if it is a terminal")
    add_endpoint_options(parser)
    parser.add_argument("--curl", action="store_true",
                        help="print the request as a runnable curl command; send nothing")
    parser.add_argument("-v", "--debug", action="store_true",
                        help="trace every request and response to stderr; tracebacks on errors "
                             "(not on bad input: its line says what to fix)")
    parser.add_argument("--version", action=_PrintAndExit, help="show apitx's version and exit")
    return parser


class _PrintAndExit(argparse.Action):
    """``--help`` and ``--version``: print, then exit 0.

    argparse's own actions drop a failed write in silence (exit 0 on a full
    disk); these write as the result is written, so a failure is one line.
    """

    def __init__(self, option_strings: List[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: Optional[str] = None) -> None:
        text = f"apitx {__version__}\n" if self.dest == "version" else parser.format_help()
        _stdout().write(text.encode("utf-8"))
        parser.exit()


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds >= 0")
    return value


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command; return its exit code (the console script exits with it).

    Whatever goes wrong ends as one line on stderr and an exit code from the
    table in ``--help``; ``-v`` adds the traceback of a failed request and of
    a bug of apitx.
    """
    _claim_standard_fds()
    words = list(sys.argv[1:] if argv is None else argv)
    if words and words[0] in SUBCOMMANDS:
        return SUBCOMMANDS[words[0]](words[1:])
    debug = False
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exc:  # --help and --version (0), usage errors (2)
            code = exc.code if isinstance(exc.code, int) else EXIT_USAGE
        else:
            debug = args.debug
            code = _run(args)
        if sys.stdout is not None:
            with _writing("stdout"):  # --help, --version and JSON may still be buffered
                sys.stdout.flush()
        return code
    except (APITXError, UsageError, _Interrupted, _OutputError) as exc:
        code = _exit_code(exc)
        # Bad input is the user's to fix: the line says how, a traceback adds nothing.
        return _fail(str(exc), code, debug and code != EXIT_USAGE)
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED, debug)
    except BrokenPipeError:
        # The reader went away (apitx ... | head): nothing left to tell anyone;
        # exit as a process killed by SIGPIPE does.
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except Exception as exc:  # a bug of apitx: still one line, and a code of its own
        hint = "" if debug else " (run with -v for the traceback)"
        return _fail(f"internal error: {type(exc).__name__}: {exc}{hint}", EXIT_INTERNAL, debug)


def _claim_standard_fds() -> None:
    """Open /dev/null on stdin, stdout or stderr when the shell closed it (``2>&-``).

    Otherwise the next file or socket apitx opens would take that number, and
    whatever is written to "stderr" would land in it. Python already made
    ``sys.stdout`` (and the others) None for a descriptor closed at start:
    that is how :func:`_stdout` knows stdout is closed. Messages to a closed
    stderr go nowhere; the exit code still tells.
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            os.open(os.devnull, os.O_RDWR)  # the lowest free descriptor: this one
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w", encoding="utf-8")


#: The exit code of each failure, most specific class first.
#: The command's own failures; the library's are in _exit.LIBRARY_EXIT_CODES.
_EXIT_CODES = (
    (UsageError, EXIT_USAGE),
    (_OutputError, EXIT_OUTPUT),
    (_Interrupted, EXIT_INTERRUPTED),
)


def _exit_code(exc: BaseException) -> int:
    return next((code for kind, code in _EXIT_CODES if isinstance(exc, kind)), exit_code(exc))


def _fail(message: str, code: int, with_traceback: bool) -> int:
    try:
        if with_traceback:
            traceback.print_exc(file=sys.stderr)
        sys.stderr.write(f"apitx: {message}\n")
        sys.stderr.flush()
    except OSError:
        pass  # stderr is full or gone: the exit code is all that can still tell
    if code in (EXIT_OUTPUT, EXIT_INTERRUPTED):
        _silence_stdout()  # or the interpreter's last flush fails (or blocks) again
    return code


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    stdout = sys.stdout
    if stdout is not sys.__stdout__ or stdout is None:
        return  # closed from the start (nothing buffered), or main() runs in a host's process
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, stdout.fileno())
    os.close(devnull)


@contextmanager
def _writing(name: str) -> Iterator[None]:
    """Turn a failed write to ``name`` (stdout, ``-o FILE``) into one line (exit 5)."""
    try:
        yield
    except BrokenPipeError:
        raise  # the reader left: exit 141, as for SIGPIPE
    except OSError as exc:
        raise _OutputError(f"{name}: {exc.strerror or exc}") from None


def _stdout() -> _Sink:
    """stdout as a :class:`_Sink`, checked before anything is sent."""
    if sys.stdout is None:
        raise UsageError("stdout is closed: the result would be lost, so nothing was sent; "
                         "redirect it (>/dev/null) or use -o FILE")
    return _Sink(sys.stdout.buffer, "stdout")


class _Sink:
    """Where the result goes, stdout or ``-o FILE``: a failed write names it.

    Example::

        _Sink(open("out.json", "wb"), "-o out.json").write(b"{}\n")   # a full disk: _OutputError
    """

    def __init__(self, stream: IO[bytes], name: str) -> None:
        self.stream, self.name = stream, name

    def write(self, data: bytes) -> None:
        with _writing(self.name):
            rest = memoryview(data)
            while rest:  # unbuffered (PYTHONUNBUFFERED), stdout may take only a part
                rest = rest[self.stream.write(rest):]

    def flush(self) -> None:
        with _writing(self.name):
            self.stream.flush()


# -- the request -----------------------------------------------------------------

def _run(args: argparse.Namespace) -> int:
    if args.timeout is not None and not args.wait:
        raise UsageError("--timeout applies to --wait: add --wait, or drop --timeout")
    if args.cancel_on_interrupt and not args.wait:
        raise UsageError("--cancel-on-interrupt applies to --wait: add --wait")
    method = args.request.strip().upper()
    if not _TOKEN.match(method):
        raise UsageError(f"-X {args.request!r} is not an HTTP method (GET, POST, PUT, ...)")
    _utf8("PATH", args.path)
    headers = _parse_headers(args.header)
    params = _parse_params(args.param)
    project = None if args.project is None else _utf8("--project", args.project)
    target = None if args.target is None else _utf8("--target", args.target)
    with ExitStack() as stack:
        if args.debug:
            stack.enter_context(_trace_to_stderr())
        body, content_type = _request_body(args, stack)
        if content_type and not any(name.lower() == "content-type" for name in headers):
            headers["Content-Type"] = content_type
        timeout = Timeout(total=args.max_time) if args.max_time else Timeout()
        api = stack.enter_context(API.factory(args.endpoint, debug=args.debug, timeout=timeout,
                                              project=project, target=target,
                                              **_tls_options(args)))
        api.url(args.path)  # a full URL given as PATH is a usage error, before any output
        if args.curl:
            return _print_curl(api, method, args, headers, params, body)
        output = _open_output(args.output, stack)
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


#: An HTTP method or header name: an RFC 7230 token (ASCII only).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
#: What a header value may hold: printable ASCII, spaces and tabs. http.client
#: would send other characters as Latin-1, which is not what was typed (the
#: command line is UTF-8), or refuse them from deep inside.
_NOT_IN_VALUE = re.compile(r"[^\t\x20-\x7e]")


def _parse_headers(values: List[str]) -> Dict[str, str]:
    headers: Dict[str, str] = {}
    for value in values:
        name, sep, content = value.partition(":")
        name, content = name.strip(), content.strip()
        if not sep or not name:
            raise UsageError(f"-H {value!r} is not a header: write it as 'Name: value'")
        if not _TOKEN.match(name):
            raise UsageError(f"-H {value!r} is not a header: a name is ASCII letters, digits "
                             "and !#$%&'*+-.^_`|~")
        bad = _NOT_IN_VALUE.search(content)
        if bad:  # where, not what: a header value is often a secret
            raise UsageError(f"-H: header {name} cannot be sent: its value has a character "
                             f"that is not printable ASCII (at position {bad.start() + 1})")
        headers[name] = content
    return headers


def _parse_params(values: List[str]) -> List[Tuple[str, str]]:
    params = []
    for value in values:
        key, sep, content = value.partition("=")
        if not sep or not key:
            raise UsageError(f"-p {value!r} is not a parameter: write it as key=value")
        params.append((_utf8("-p", key), _utf8("-p", content)))
    return params


def _utf8(option: str, text: str) -> str:
    """``text`` from the command line, refused if it holds bytes that are not UTF-8.

    Python keeps such bytes as lone surrogates (``\\udcff``), which cannot be
    encoded to be sent.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise UsageError(f"{option}: not UTF-8 text (at character {exc.start + 1}); "
                         "nothing was sent") from None
    return text


def _request_body(args: argparse.Namespace, stack: ExitStack) -> Tuple[Any, Optional[str]]:
    """The body to send and its default Content-Type."""
    if args.data is not None:
        text = _utf8("-d " + args.data if args.data.startswith("@") else "-d",
                     _read_data(args.data))
        _check_json(text)
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


def _check_json(text: str) -> None:
    """Refuse a -d body that is not JSON, before anything is sent.

    Python's parser takes more than JSON: ``NaN``, ``Infinity`` and
    ``-Infinity`` (which LXD's Go parser refuses) are refused here. So is a
    key given twice in one object: JSON leaves its meaning open, and LXD keeps
    only the last, so the first is silently lost (``{"config": {...},
    "config": {...}}`` is a mistake, never a request).

    Example::

        _check_json('{"a": NaN}')   # UsageError: -d: invalid JSON: NaN is not JSON (...)
    """
    try:
        json.loads(text, parse_constant=_no_constant, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        raise UsageError(f"-d: invalid JSON at line {exc.lineno}, column {exc.colno}: "
                         f"{exc.msg}; nothing was sent") from None
    except RecursionError:
        raise UsageError("-d: the JSON is nested too deeply to check; nothing was sent") from None


def _no_constant(name: str) -> NoReturn:
    raise UsageError(f"-d: invalid JSON: {name} is not JSON (JSON has no NaN or Infinity); "
                     "nothing was sent")


def _unique_keys(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    keys = set()
    for key, _ in pairs:
        if key in keys:
            raise UsageError(f"-d: key {key!r} appears twice in one object (LXD would keep only "
                             "the last); nothing was sent")
        keys.add(key)
    return dict(pairs)


def _read_data(value: str) -> str:
    if value == "@-":
        if sys.stdin is None:
            raise UsageError("-d @-: stdin is closed: pipe the JSON in, or give it as -d TEXT "
                             "or -d @FILE; nothing was sent")
        return _read_text(sys.stdin, value)
    if value.startswith("@"):
        with _open(value[1:], "r", "-d") as handle:
            return _read_text(handle, value)
    return value


def _read_text(stream: IO[str], value: str) -> str:
    try:
        return stream.read()
    except UnicodeDecodeError as exc:
        raise UsageError(f"-d {value}: not UTF-8 text ({exc.reason}); for raw "
                         "bytes use --data-binary") from None


def _open(path: str, mode: str, option: str) -> IO[Any]:
    try:
        return open(path, mode, encoding="utf-8" if "b" not in mode else None)
    except OSError as exc:
        raise UsageError(f"{option} {path}: {exc.strerror}") from None


def _open_output(path: Optional[str], stack: ExitStack) -> _Sink:
    """Where the result goes, prepared before the request so a bad path costs nothing.

    No ``-o``, or ``-o -``, is stdout (``-o -`` even a terminal: the user asked
    for the bytes there). ``-o FILE`` acts as ``cp`` writing FILE: through a
    symlink (a dangling one creates its target), keeping an existing file's
    mode and owner, and into a device or FIFO (``/dev/null``). A regular file
    is written beside its final name and takes that name only when the
    command succeeds: a failed, interrupted or truncated pull (a full disk)
    leaves the previous file as it was.
    """
    if path is None or path == "-":
        return _stdout()
    try:
        existing: Optional[os.stat_result] = os.stat(path)  # follows symlinks, as cp does
    except FileNotFoundError:
        existing = None  # a new file (or a dangling symlink's target)
    except OSError as exc:  # a symlink loop, a file used as a directory...
        raise UsageError(f"-o {path}: {exc.strerror}") from None
    if existing is not None and stat.S_ISDIR(existing.st_mode):
        raise UsageError(f"-o {path}: is a directory; give a file name")
    if existing is not None and not stat.S_ISREG(existing.st_mode):
        return stack.enter_context(_closing_sink(_open(path, "wb", "-o"), f"-o {path}"))
    return stack.enter_context(_replacing(os.path.realpath(path), existing, f"-o {path}"))


@contextmanager
def _closing_sink(stream: IO[bytes], name: str) -> Iterator[_Sink]:
    """A :class:`_Sink` on a file of ours, closed at the end, where a full
    disk may show only now (or again: what a failed write left is still buffered)."""
    try:
        yield _Sink(stream, name)
    finally:
        with _writing(name):
            stream.close()


@contextmanager
def _replacing(path: str, existing: Optional[os.stat_result], name: str) -> Iterator[_Sink]:
    """A temporary file beside ``path`` that replaces it when the block succeeds."""
    try:
        fd, temporary = tempfile.mkstemp(prefix=".apitx-", dir=os.path.dirname(path))
    except OSError as exc:
        raise UsageError(f"{name}: {exc.strerror}") from None
    try:
        with _closing_sink(os.fdopen(fd, "wb"), name) as sink:
            _take_over(fd, existing)
            yield sink
    except BaseException:
        os.unlink(temporary)
        raise
    os.replace(temporary, path)


def _take_over(fd: int, existing: Optional[os.stat_result]) -> None:
    """Give the new file the mode (and owner) a file written in place would have."""
    if existing is None:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # as open() would create it, not mkstemp's 0600
        return
    if (existing.st_uid, existing.st_gid) != (os.geteuid(), os.getegid()):
        try:
            os.fchown(fd, existing.st_uid, existing.st_gid)  # before chmod: chown drops setuid
        except PermissionError:
            pass  # only root gives files away: the new copy is the writer's, as an editor's save
    os.fchmod(fd, stat.S_IMODE(existing.st_mode))


def _tls_options(args: argparse.Namespace) -> Dict[str, Any]:
    try:
        return tls_options(args)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _print_curl(api: API, method: str, args: argparse.Namespace, headers: Dict[str, str],
                params: List[Tuple[str, str]], body: Any) -> int:
    try:
        command = api.curl(method, args.path, headers=headers, params=params, data=body)
    except RequestError as exc:
        raise UsageError(f"--curl: {exc}") from None
    if args.output:
        command += f" -o {shlex.quote(args.output)}"
    _stdout().write((command + "\n").encode("utf-8"))
    return EXIT_OK


# -- the answer ------------------------------------------------------------------

def _write_json(value: Any, output: _Sink, args: argparse.Namespace) -> None:
    if value is None and not args.raw:
        return  # as lxc query: an answer with no metadata prints nothing
    output.write((_json_text(value, args.compact) + "\n").encode("utf-8"))
    output.flush()


def _json_text(value: Any, compact: bool) -> str:
    """The result as JSON: indented, or on one line with ``compact``.

    json.dumps recurses once per level and stops near Python's recursion limit
    (about 1,000 levels), but apitx parses answers up to 20,000 levels deep:
    those print on one line, from a walk with a stack of its own.
    """
    try:
        if compact:
            return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        return json.dumps(value, ensure_ascii=False, indent=4)
    except RecursionError:
        return "".join(_compact_json(value))


def _compact_json(value: Any) -> Iterator[str]:
    """``value`` in pieces, as ``json.dumps(value, separators=(",", ":"))`` writes it, at any depth.

    >>> "".join(_compact_json({"a": [1, {"b": None}], "c": []}))
    '{"a":[1,{"b":null}],"c":[]}'
    """
    encode = json.JSONEncoder(ensure_ascii=False).encode  # scalars and empty containers only
    stack = [iter([(False, value)])]
    while stack:
        for is_syntax, item in stack[-1]:
            if is_syntax:
                yield item
            elif isinstance(item, (dict, list)) and item:
                stack.append(_members(item, encode))
                break  # walk the new top; this level resumes after it
            else:
                yield encode(item)
        else:
            stack.pop()


def _members(container: Any, encode: Callable[[Any], str]) -> Iterator[Tuple[bool, Any]]:
    """A non-empty dict or list as (True, syntax) and (False, value) pairs, in order."""
    if isinstance(container, dict):
        for index, (key, value) in enumerate(container.items()):
            yield True, ("," if index else "{") + encode(key) + ":"
            yield False, value
        yield True, "}"
        return
    for index, value in enumerate(container):
        yield True, "," if index else "["
        yield False, value
    yield True, "]"


def _write_body(result: APIResult, output: _Sink, args: argparse.Namespace) -> int:
    """Copy a non-JSON answer (a file pull, an image export) to -o or a pipe, streamed."""
    if args.output is None and sys.stdout.isatty():
        if result.response.headers.get("Content-Length") == "0":
            return EXIT_OK
        kind = result.response.headers.get("Content-Type") or "no Content-Type"
        raise UsageError(f"{result.request_line()}: the answer is not JSON ({kind}): "
                         "not written to a terminal; use -o FILE, -o - or a pipe")
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
