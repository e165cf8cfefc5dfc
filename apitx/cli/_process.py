"""The ``apitx`` process: its standard descriptors, its logging, and how a
command's failure becomes one line on stderr and an exit code.

Every command (the request and each subcommand) runs through
:func:`run_command`, so a closed stdout, a full disk, Ctrl-C, a reader that
went away (``| head``) or a bug of apitx end the same way everywhere: one
line, the code of the table in :mod:`._exit`, a traceback only under ``-v``.

Example: a command of two lines; its failures are one line on stderr and
the table's exit code (here 2: a usage error):

>>> import argparse
>>> parser = argparse.ArgumentParser(prog='hello')
>>> _ = parser.add_argument('name')
>>> run_command(parser.parse_args, lambda args: print('hi', args.name) or 0, [c1], Failures())
hi apitx-...
0
>>> run_command(parser.parse_args, lambda args: 0, [], Failures())
2
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from contextlib import contextmanager
from typing import Callable, Iterator, NamedTuple, Optional, Sequence

from .. import APITXError, Signalled
from ._exit import (EXIT_BROKEN_PIPE, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_USAGE, Interrupted,
                    OutputError, UsageError, exit_code)
from ._output import writing

#: What a command's body may raise on purpose: each has its line and code.
EXPECTED = (APITXError, UsageError, OutputError, Interrupted)


def claim_standard_fds() -> None:
    """Open /dev/null on stdin, stdout or stderr when the shell closed it (``2>&-``).

    Otherwise the next file or socket apitx opens would take that number, and
    whatever is written to "stderr" would land in it. Python already made
    ``sys.stdout`` (and the others) None for a descriptor closed at start:
    that is how a command knows stdout is closed. Messages to a closed stderr
    go nowhere; the exit code still tells.
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            os.open(os.devnull, os.O_RDWR)  # the lowest free descriptor: this one
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w", encoding="utf-8")


def silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    stdout = sys.stdout
    if stdout is not sys.__stdout__ or stdout is None:
        return  # closed from the start (nothing buffered), or main() runs in a host's process
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, stdout.fileno())
    os.close(devnull)


def say(message: str) -> None:
    """``apitx: message`` on stderr, as one line; a stderr that is full or gone is ignored
    (the exit code is all that can still tell)."""
    try:
        sys.stderr.write(f"apitx: {message}\n")
        sys.stderr.flush()
    except OSError:
        pass


class Failures(NamedTuple):
    """How one command reports failures.

    ``own``: None to take each failure's code from the table (the request,
    events, remote), or the one code for every failure of apitx itself
    (``apitx exec``: 255, since any other could be the command's own status).
    ``interrupted``: the line Ctrl-C leaves, or None for none (Ctrl-C is how
    ``apitx events`` is stopped: no news).
    """

    own: Optional[int] = None
    interrupted: Optional[str] = "interrupted"

    def code(self, exc: BaseException) -> int:
        return exit_code(exc) if self.own is None else self.own

    def internal(self) -> int:
        return EXIT_INTERNAL if self.own is None else self.own

    def usage(self, code: int) -> int:
        """The code of an argparse exit: 0 (--help) stays 0."""
        return code if self.own is None or code == 0 else self.own


def run_command(parse: Callable[[Sequence[str]], argparse.Namespace],
                act: Callable[[argparse.Namespace], int], argv: Sequence[str],
                failures: Failures) -> int:
    """Parse ``argv``, act on it, and return the exit code, whatever happens.

    Every failure is one line on stderr (with the traceback under ``-v``,
    except for bad input: its line says what to fix).
    """
    debug = False
    try:
        args = parse(argv)
        debug = bool(getattr(args, "debug", False))
        code = act(args)
        _flush_stdout()  # --help, --version and JSON may still be buffered
        return code
    except SystemExit as exc:  # argparse: --help (0), usage errors (2)
        return failures.usage(exc.code if isinstance(exc.code, int) else EXIT_USAGE)
    except Exception as exc:
        return _report(exc, failures, debug)
    except Signalled as exc:  # SIGTERM, SIGHUP (apitx.raising_on): as the signal would
        import signal  # loaded already: raising_on() set the handler that raised this

        _fail(f"{signal.Signals(exc.signum).name}: the command was killed", 128 + exc.signum,
              debug, quiet_stdout=True)
        return 128 + exc.signum
    except KeyboardInterrupt:
        if failures.interrupted is None:
            return EXIT_INTERRUPTED
        return _fail(failures.interrupted, EXIT_INTERRUPTED, debug, quiet_stdout=True)


def _report(exc: Exception, failures: Failures, debug: bool) -> int:
    """Tell what went wrong in one line (called while ``exc`` is handled); its exit code."""
    if isinstance(exc, EXPECTED):
        return _fail(str(exc), failures.code(exc), debug and exit_code(exc) != EXIT_USAGE,
                     quiet_stdout=isinstance(exc, (OutputError, Interrupted)))
    if isinstance(exc, BrokenPipeError):
        # The reader went away (apitx ... | head): nothing left to tell anyone;
        # exit as a process killed by SIGPIPE does.
        silence_stdout()
        return EXIT_BROKEN_PIPE
    # A bug of apitx: still one line, and a code of its own.
    hint = "" if debug else " (run with -v for the traceback)"
    return _fail(f"internal error: {type(exc).__name__}: {exc}{hint}", failures.internal(),
                 debug)


def _flush_stdout() -> None:
    if sys.stdout is not None:
        with writing("stdout"):
            sys.stdout.flush()


def _fail(message: str, code: int, with_traceback: bool, quiet_stdout: bool = False) -> int:
    if with_traceback:
        try:
            traceback.print_exc(file=sys.stderr)
        except OSError:
            pass
    say(message)
    if quiet_stdout:
        silence_stdout()  # or the interpreter's last flush fails (or blocks) again
    return code


@contextmanager
def tracing_to_stderr() -> Iterator[None]:
    """Send the ``apitx`` logger's trace (``-v``) to stderr, and only there.

    The command is the application, so it owns logging: without this the
    library's trace would go wherever a host's root handlers point (or be
    printed twice). Restored afterwards, so ``main()`` can run in process.
    """
    from .. import StderrHandler  # the tracer's module: imported only for -v

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
