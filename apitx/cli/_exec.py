"""``apitx exec``: run a command in an instance, streams passed through live.

    apitx exec [-e ENDPOINT] [--project P] [--env K=V]... [--cwd DIR] [--user UID]
               [--group GID] [--timeout S] [-t] INSTANCE -- COMMAND [ARG...]

stdin is passed to the command (``< /dev/null`` for none; a closed stdin is
none); its stdout and stderr are written to ours as they arrive; the exit
status is the command's. ``-t`` runs it in a terminal of our terminal's
size (a shell, an editor): our terminal goes raw while it runs (Ctrl-C then
goes to the command) and window resizes follow.

apitx's own failures exit 255 with one line on stderr, as ssh does, so they
never pass for the command's own status: cannot connect, no such instance,
bad options (a ``--timeout`` that is not a finite number > 0, an argument
that is not UTF-8: nothing is run), the timeout (the command is killed),
our stdout or stderr that cannot be written (a full disk: the command is
killed) or is closed (nothing is run), and a bug of apitx. Ctrl-C kills the
command and exits 130; a closed pipe (``| head``) kills it and exits 141.

Example:

>>> shell("apitx exec $c1 -- sh -c 'echo hi; exit 3'")
hi
[exit 3]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import termios
import tty
from contextlib import ExitStack, contextmanager
from typing import Any, Dict, Iterator, List, Sequence, Tuple

from .. import ExecControl, raising_on, run_exec
from ._exit import EXIT_EXEC_OWN, UsageError
from ._input import utf8
from ._options import add_connection_options, connect, new_parser, positive_seconds
from ._output import ResultWriter, stdout_writer
from ._process import Failures, run_command

EPILOG = """\
exit status:
  the command's own, as it exited (127: no such command)
  255  apitx itself failed (cannot connect, no such instance, bad options, the
       --timeout passed, stdout or stderr cannot be written): one line on stderr
  130  interrupted (Ctrl-C): the command was killed
  141  stdout was closed early (apitx exec ... | head): the command was killed
"""

#: Every failure of apitx's own is 255; Ctrl-C says the command is gone.
FAILURES = Failures(own=EXIT_EXEC_OWN, interrupted="interrupted; the command was killed")


def build_parser() -> argparse.ArgumentParser:
    parser = new_parser("apitx exec", "Run a command in an instance, streams live.", EPILOG)
    add_connection_options(parser)
    parser.add_argument("--env", metavar="KEY=VALUE", action="append", default=[],
                        help="set an environment variable (repeatable)")
    parser.add_argument("--cwd", metavar="DIR", help="the working directory")
    parser.add_argument("--user", metavar="UID", type=int, help="run as this user id")
    parser.add_argument("--group", metavar="GID", type=int, help="run as this group id")
    parser.add_argument("--timeout", metavar="SECONDS", type=positive_seconds,
                        help="kill the command after this long (exit 255)")
    parser.add_argument("-t", "--tty", action="store_true",
                        help="run in a terminal (shells, editors); our terminal goes raw")
    parser.add_argument("instance", metavar="INSTANCE")
    parser.add_argument("command", metavar="COMMAND", nargs=argparse.REMAINDER,
                        help="after --: the command and its arguments")
    return parser


def main(argv: Sequence[str]) -> int:
    """Run ``apitx exec``; return the command's exit status, or 255 for apitx's own failure."""
    return run_command(build_parser().parse_args, run, argv, FAILURES)


def run(args: argparse.Namespace) -> int:
    command = _command(args.command)
    env = _parse_env(args.env)
    stdout = stdout_writer("the command's output", "redirect it (>/dev/null)")
    stderr = ResultWriter(sys.stderr.buffer, "stderr")
    options: Dict[str, Any] = {"user": args.user, "group": args.group,
                               "timeout": args.timeout}
    for name in ("cwd", "project"):
        value = getattr(args, name)
        options[name] = None if value is None else utf8(f"--{name}", value)
    with connect(args) as api, ExitStack() as terminal:
        if args.tty:
            env.setdefault("TERM", os.environ.get("TERM", "xterm"))
            options.update(_terminal(terminal))
        # Unbuffered: a read returns what is there (a terminal's keys live),
        # and the library waits for it to be readable before each read.
        # Descriptor 0 itself: a stdin closed at start is /dev/null by now.
        stdin = terminal.enter_context(open(0, "rb", buffering=0, closefd=False))
        # SIGTERM and SIGHUP kill the command (and all it started) as
        # Ctrl-C does; the exit code is then 128 + the signal's number.
        terminal.enter_context(raising_on(signal.SIGTERM, signal.SIGHUP))
        result = run_exec(api, utf8("INSTANCE", args.instance), command, stdin=stdin, env=env,
                          stdout=stdout.write_now, stderr=stderr.write_now, **options)
    return result.return_code


def _command(words: List[str]) -> List[str]:
    command = words[1:] if words[:1] == ["--"] else words
    if not command:
        raise UsageError("give the command after --, such as: apitx exec c1 -- ls -l /")
    return [utf8("COMMAND", word) for word in command]


def _parse_env(values: List[str]) -> Dict[str, str]:
    env = {}
    for value in values:
        key, sep, setting = utf8("--env", value).partition("=")
        if not sep or not key:
            raise UsageError(f"--env {value!r}: give KEY=VALUE")
        env[key] = setting
    return env


def _terminal(stack: ExitStack) -> Dict[str, Any]:
    """``run_exec`` options for ``-t``: our terminal raw until the end, its size
    now, and its resizes passed on once the command runs."""
    stack.enter_context(_raw(sys.stdin))
    return {"terminal": _size(),
            "on_start": lambda control: stack.enter_context(_following_resizes(control))}


def _size() -> Tuple[int, int]:
    """Our terminal's (columns, lines), from whichever of stdout, stdin is one."""
    for fd in (1, 0):
        try:
            size = os.get_terminal_size(fd)
            return size.columns, size.lines
        except OSError:
            continue
    return 80, 24


@contextmanager
def _raw(stream: Any) -> Iterator[None]:
    """Our terminal in raw mode (keys go to the command as typed), restored after."""
    if stream is None or not stream.isatty():
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
