"""``apitx [options] PATH``: one request, ``lxc query`` with tracing, curl
export, progress and binary output.

The steps, each in its own module: the command line is checked
(:mod:`._input`) before anything is sent; the output is prepared
(:mod:`._output`) before the request, so a bad ``-o`` costs nothing; the
answer is JSON (its metadata printed), a stream (copied), or an operation
(``--wait``: :mod:`._wait`). stdout carries only the result.

Example: ``GET /1.0/instances/c1/state`` prints its ``metadata``; ``--wait``
waits for an operation and prints its end; ``-o FILE`` takes any body (here
an image's tarball):

>>> shell('''apitx instances/$c1/state | grep -o '"status": "[A-Za-z]*"' ''')
"status": "Running"
>>> shell('''apitx -X PUT -d '{"action": "start"}' --wait instances/$c1/state''')
apitx: PUT unix:/var/lib/lxd/unix.socket /1.0/instances/.../state: operation ... failed: The
instance is already running
[exit 1]
>>> shell('''fp=$(apitx images/aliases/apitx-busybox | grep -oE '[0-9a-f]{64}')
... apitx -o /tmp/$c2.tar.gz images/$fp/export && tar -tzf /tmp/$c2.tar.gz | head -2
... rm /tmp/$c2.tar.gz''')
metadata.yaml
rootfs/
"""

from __future__ import annotations

import argparse
from contextlib import ExitStack
from typing import Any, Dict, List, Sequence, Tuple

from .. import API, APIResult, RequestError, Timeout
from ._exit import EXIT_OK, TABLE, UsageError
from ._input import parse_headers, parse_params, request_body, utf8
from ._options import PrintAndExit, add_endpoint_options, new_parser, seconds, tls_options
from ._output import ResultWriter, open_output, stdout_writer, write_body, write_json
from ._process import Failures, run_command, tracing_to_stderr

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
  apitx exec [options] INSTANCE -- COMMAND...   run a command, streams live; exits with its
                                                status, or 255 when apitx itself fails
  apitx events [--type T] [--count N]            the server's events, like lxc monitor
  apitx remote add|list|remove                   remotes, kept as lxc and incus keep them
  apitx copy|move [REMOTE:]NAME [REMOTE:][NAME]  instances within or between servers, as
                                                lxc copy and lxc move take them
  apitx export|import ...                        an instance to a backup file and back

""" + TABLE


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``apitx`` command."""
    parser = new_parser("apitx", epilog=EXAMPLES, description=(
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
    parser.add_argument("--project", metavar="NAME",
                        help="add project=NAME to the query (of --wait's polls too)")
    parser.add_argument("--target", metavar="MEMBER",
                        help="add target=MEMBER to the query: the cluster member to act on")
    parser.add_argument("--wait", action="store_true",
                        help="wait for the returned operation to end; print it")
    parser.add_argument("--timeout", metavar="SECONDS", type=seconds,
                        help="with --wait: give up after SECONDS (exit 4)")
    parser.add_argument("--max-time", metavar="SECONDS", type=seconds,
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
    parser.add_argument("--version", action=PrintAndExit, help="show apitx's version and exit")
    return parser


def main(argv: Sequence[str]) -> int:
    """Run the request command on ``argv`` (the words after ``apitx``); return the exit code."""
    return run_command(build_parser().parse_args, run, argv, Failures())


def run(args: argparse.Namespace) -> int:
    """Send the request ``args`` describe; write its result."""
    _check_wait_options(args)
    utf8("PATH", args.path)
    headers = parse_headers(args.header)
    params = parse_params(args.param)
    with ExitStack() as stack:
        if args.debug:
            stack.enter_context(tracing_to_stderr())
        body, content_type = request_body(args.data, args.data_binary, stack)
        if content_type and not any(name.lower() == "content-type" for name in headers):
            headers["Content-Type"] = content_type
        api = stack.enter_context(_connect(args))
        api.url(args.path)  # a full URL given as PATH is a usage error, before any output
        if args.curl:
            return _print_curl(api, args, headers, params, body)
        output = open_output(args.output, stack)
        result = api.request(args.request, args.path, validate=False, stream=True,
                             headers=headers, params=params, data=body)
        stack.callback(result.response.close)
        return _answer(api, result, output, args)


def _check_wait_options(args: argparse.Namespace) -> None:
    if args.timeout is not None and not args.wait:
        raise UsageError("--timeout applies to --wait: add --wait, or drop --timeout")
    if args.cancel_on_interrupt and not args.wait:
        raise UsageError("--cancel-on-interrupt applies to --wait: add --wait")


def _connect(args: argparse.Namespace) -> API:
    project = None if args.project is None else utf8("--project", args.project)
    target = None if args.target is None else utf8("--target", args.target)
    timeout = Timeout(total=args.max_time) if args.max_time else Timeout()
    return API.factory(args.endpoint, debug=args.debug, timeout=timeout, project=project,
                       target=target, **tls_options(args))


def _answer(api: API, result: APIResult, output: ResultWriter, args: argparse.Namespace) -> int:
    """Write what the server answered: a stream as it came, JSON as its
    metadata (``--raw``: the envelope), an operation once it ended (``--wait``)."""
    if result.data is None:
        return write_body(result.validate(), output, terminal_ok=args.output is not None)
    if args.wait:
        from ._wait import wait  # here: only --wait waits

        result = wait(api, result, timeout=args.timeout,
                      cancel_on_interrupt=args.cancel_on_interrupt)
    else:
        result.validate()
    value = result.data if args.raw else result.metadata
    if value is not None or args.raw:  # as lxc query: no metadata prints nothing
        write_json(value, output, compact=args.compact)
    return EXIT_OK


def _print_curl(api: API, args: argparse.Namespace, headers: Dict[str, str],
                params: List[Tuple[str, str]], body: Any) -> int:
    try:
        command = api.curl(args.request, args.path, headers=headers, params=params, data=body)
    except RequestError as exc:
        raise UsageError(f"--curl: {exc}") from None
    if args.output:
        import shlex  # here: only --curl -o quotes a word

        command += f" -o {shlex.quote(args.output)}"
    stdout_writer().write((command + "\n").encode("utf-8"))
    return EXIT_OK
