"""`apitx exec`: run a command in an instance, streams passed through live.

    apitx exec [-e ENDPOINT] [--project P] [--env K=V]... [--cwd DIR] [--user UID]
               [--group GID] [--timeout S] [-t] INSTANCE -- COMMAND [ARG...]

stdin is passed to the command (``< /dev/null`` for none); its stdout and
stderr are written to ours as they arrive; the exit status is the
command's. ``-t`` runs it in a terminal of our terminal's size (a shell,
an editor): our terminal goes raw while it runs (Ctrl-C then goes to the
command) and window resizes follow. apitx's own failures (cannot connect, no such instance, the
timeout) exit 255 with one line on stderr, as ssh does, so they never pass
for the command's own status. Ctrl-C kills the command (SIGKILL, over the
control websocket) and exits 130; a closed stdout (``| head``) kills it and
exits 141.

Example::

    apitx exec c1 -- sh -c 'echo hi; exit 3'; echo $?      # hi, then 3
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import termios
import tty
from contextlib import ExitStack, contextmanager
from typing import IO, Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from ._cli_common import add_connection_options, connect, fail
from ._exceptions import APITXError
from ._exec import ExecControl, run_exec
from ._exit import EXIT_BROKEN_PIPE, EXIT_INTERRUPTED

#: ssh's convention: the command's status, or 255 for the tool's own failure
#: (so no exit code of _exit.LIBRARY_EXIT_CODES: those could be the command's).
EXIT_OWN_FAILURE = 255


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="apitx exec", description="Run a command in an instance, streams live.",
        epilog="exit status: the command's; 255 when apitx itself fails; 130 on Ctrl-C")
    add_connection_options(parser)
    parser.add_argument("--env", metavar="KEY=VALUE", action="append", default=[],
                        help="set an environment variable (repeatable)")
    parser.add_argument("--cwd", metavar="DIR", help="the working directory")
    parser.add_argument("--user", metavar="UID", type=int, help="run as this user id")
    parser.add_argument("--group", metavar="GID", type=int, help="run as this group id")
    parser.add_argument("--timeout", metavar="SECONDS", type=float,
                        help="kill the command after this long (exit 255)")
    parser.add_argument("-t", "--tty", action="store_true",
                        help="run in a terminal (shells, editors); our terminal goes raw")
    parser.add_argument("instance", metavar="INSTANCE")
    parser.add_argument("command", metavar="COMMAND", nargs=argparse.REMAINDER,
                        help="after --: the command and its arguments")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run `apitx exec`; return the exit status."""
    try:
        return _run(build_parser(), argv)
    except SystemExit as exc:  # --help (0); a usage error is apitx's own failure
        return 0 if exc.code == 0 else EXIT_OWN_FAILURE


def _run(parser: argparse.ArgumentParser, argv: Optional[Sequence[str]]) -> int:
    args = parser.parse_args(argv)
    command: List[str] = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.print_usage(sys.stderr)
        sys.stderr.write("apitx exec: give the command after --, such as: "
                         "apitx exec c1 -- ls -l /\n")
        return EXIT_OWN_FAILURE
    try:
        env = _parse_env(args.env)
        api = connect(parser, args)
        with ExitStack() as terminal:
            tty_options: Dict[str, Any] = {}
            if args.tty:
                env.setdefault("TERM", os.environ.get("TERM", "xterm"))
                terminal.enter_context(_raw(sys.stdin))
                tty_options = {"terminal": _size(),
                               "on_start": lambda control: terminal.enter_context(
                                   _following_resizes(control))}
            # Unbuffered: a read returns what is there (a terminal's keys
            # live), and the stdin thread, left blocked in it once the command
            # ended (a terminal never ends), holds no lock that the
            # interpreter's shutdown would wait for (sys.stdin.buffer does).
            stdin = terminal.enter_context(open(sys.stdin.fileno(), "rb", buffering=0,
                                                closefd=False))
            result = run_exec(api, args.instance, command, stdin=stdin, env=env,
                              cwd=args.cwd, user=args.user, group=args.group,
                              timeout=args.timeout, stdout=_live(sys.stdout.buffer),
                              stderr=_live(sys.stderr.buffer), project=args.project,
                              **tty_options)
    except (APITXError, ValueError) as exc:
        return fail(args, exc, EXIT_OWN_FAILURE)
    except KeyboardInterrupt:
        sys.stderr.write("apitx: interrupted; the command was killed\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_BROKEN_PIPE  # the reader left (| head); the command was killed
    return result.return_code


def _parse_env(values: List[str]) -> Dict[str, str]:
    env = {}
    for value in values:
        key, sep, setting = value.partition("=")
        if not sep or not key:
            raise ValueError(f"--env {value!r}: give KEY=VALUE")
        env[key] = setting
    return env


def _size() -> Tuple[int, int]:
    """Our terminal's (columns, lines), from whichever of stdout, stdin is one."""
    for stream in (sys.stdout, sys.stdin):
        try:
            size = os.get_terminal_size(stream.fileno())
            return size.columns, size.lines
        except (OSError, ValueError):
            continue
    return 80, 24


@contextmanager
def _raw(stream: IO[Any]) -> Iterator[None]:
    """Our terminal in raw mode (keys go to the command as typed), restored after."""
    if not stream.isatty():
        yield
        return
    fd = stream.fileno()
    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


@contextmanager
def _following_resizes(control: ExecControl) -> Iterator[None]:
    """Pass our window's resizes (SIGWINCH) on to the command's terminal."""
    previous = signal.signal(signal.SIGWINCH, lambda *_: control.resize(*_size()))
    try:
        yield
    finally:
        signal.signal(signal.SIGWINCH, previous)


def _live(stream: IO[bytes]) -> Callable[[bytes], None]:
    """A sink that writes each piece at once (a pipe or terminal sees it live)."""
    def write(piece: bytes) -> None:
        stream.write(piece)
        stream.flush()
    return write


if __name__ == "__main__":  # python -m apitx._cli_exec …
    sys.exit(main())
