"""What ``apitx copy``, ``move``, ``export`` and ``import`` share: instances
named as ``lxc`` names them, one API per server, progress on a terminal, and
the traces.

An instance is ``[<remote>:]<name>[/<snapshot>]``, as ``lxc`` reads it (its
``ParseRemote``): what comes before the first ``:`` is a remote, found as
``API.factory('name:')`` finds one (apitx's config dir, then lxc's and
incus's); a word without one is on the server of ``-e`` (default: the local
LXD or Incus). Every word naming the same remote gets the same API, so
``c1 c2`` is one server, as for ``lxc``.

Progress is one line on stderr when it is a terminal (and neither ``-q``
nor a trace is there), rewritten from the ``progress=`` updates of
:mod:`apitx.migrate` (each server's own figures, apitx's byte counts when it
carries the bytes); none otherwise. ``-v`` (or ``DEBUG=1``) traces every request to each server, and a
relay's websockets as one count per websocket when it ends (the library's
trace: never the bytes carried). Ctrl-C, SIGTERM and SIGHUP stop a copy
between servers with both servers' operations cancelled (exit 130, 143,
129).

Example: what ``apitx copy c1 c2 --stateless`` does:

>>> from apitx.cli._copy import build_parser
>>> args = build_parser('copy').parse_args([c1, c2, '--stateless'])
>>> source = Place.parse(args.source, 'SOURCE')
>>> source.remote is None
True
>>> with Transfer(args, f'Copying {c1}') as transfer:
...     api = transfer.api(source.remote)
...     migrate.copy_instance(api, source.name, api, new_name=c2,
...                           progress=transfer.progress).ok
True
"""

from __future__ import annotations

import argparse
import signal
import sys
from contextlib import ExitStack
from dataclasses import dataclass
from types import TracebackType
from typing import Callable, Dict, Optional, Type

from .. import API, TraceSettings, migrate, raising_on
from ._exit import TABLE, UsageError
from ._input import utf8
from ._options import add_connection_options, connect
from ._process import tracing_to_stderr
from ._wait import ProgressLine


#: The exit codes, with what a failed transfer says.
TRANSFER_TABLE = """\
A failed transfer is one line naming the side that failed (the source or the
target), with both servers' own words, and what was left behind (the target's
partial copy is removed). It exits 1, or 3 when a server cannot be reached.

""" + TABLE


@dataclass(frozen=True)
class Place:
    """An instance as a command line names it: ``remote`` (``'lxd2:'``, or
    None for ``-e``'s server), ``name`` (empty for ``lxd2:`` alone) and
    ``snapshot`` (None when there is no ``/``)."""

    remote: Optional[str]
    name: str
    snapshot: Optional[str] = None

    @classmethod
    def parse(cls, word: str, what: str) -> Place:
        """Split ``[<remote>:]<name>[/<snapshot>]`` as ``lxc`` does; ``what``
        names the argument in messages.

        A ``:`` after a ``/`` is part of a snapshot's name, as in ``lxc``.

        >>> Place.parse('lxd2:c1/snap0', 'SOURCE')
        Place(remote='lxd2:', name='c1', snapshot='snap0')
        """
        utf8(what, word)
        head, colon, rest = word.partition(":")
        remote = None
        if colon and "/" not in head:
            if not head:
                raise UsageError(f"{what} {word!r}: give REMOTE:NAME (a remote's name before "
                                 "the colon), or NAME alone for the server of -e; nothing "
                                 "was sent")
            remote, word = f"{head}:", rest
        name, slash, snapshot = word.partition("/")
        return cls(remote, name, snapshot if slash else None)

    def __str__(self) -> str:
        snapshot = "" if self.snapshot is None else f"/{self.snapshot}"
        return f"{self.remote or ''}{self.name}{snapshot}"


def add_transfer_options(parser: argparse.ArgumentParser) -> None:
    """The options every transfer command has: the connection's (``-e`` is
    the server of a name without ``REMOTE:``), ``--project`` (on every
    server) and ``-q``."""
    add_connection_options(parser)
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no progress line (there is none when stderr is not a terminal)")


class Transfer:
    """One transfer command's run: its APIs (closed at the end), its progress
    line (cleared at the end) and, with ``-v``, the trace on stderr."""

    def __init__(self, args: argparse.Namespace, label: str) -> None:
        self.args, self.label = args, label
        self.project = None if args.project is None else utf8("--project", args.project)
        self.line = None if args.quiet or not sys.stderr.isatty() or \
            _traced(args) else ProgressLine(sys.stderr)
        self._apis: Dict[Optional[str], API] = {}
        self._stack = ExitStack()

    def __enter__(self) -> Transfer:
        try:
            if self.args.debug:
                self._stack.enter_context(tracing_to_stderr())
            # SIGTERM and SIGHUP end a transfer as Ctrl-C does: an exception
            # through apitx.migrate, which cancels both servers' operations
            # (the target then removes its partial copy), where dying at once
            # would leave them waiting on a peer that is gone. The exit code
            # is 128 + the signal's number.
            self._stack.enter_context(raising_on(signal.SIGTERM, signal.SIGHUP))
        except BaseException:
            self._stack.close()  # the logger as it was
            raise
        if self.line is not None:
            self._stack.callback(self.line.clear)
            self.line.write(f"{self.label} 0s")
        return self

    def __exit__(self, kind: Optional[Type[BaseException]], exc: Optional[BaseException],
                 traceback: Optional[TracebackType]) -> None:
        self._stack.close()

    def api(self, remote: Optional[str]) -> API:
        """The API of ``remote`` (None: the server of ``-e``), made once."""
        if remote not in self._apis:
            api = connect(self.args, project=self.project) if remote is None else \
                API.factory(remote, debug=self.args.debug, project=self.project)
            self._apis[remote] = self._stack.enter_context(api)
        return self._apis[remote]

    @property
    def progress(self) -> Optional[Callable[[migrate.TransferProgress], None]]:
        """The ``progress=`` to give :mod:`apitx.migrate`: None without a line."""
        line = self.line
        if line is None:
            return None

        def show(update: migrate.TransferProgress) -> None:
            # "source: c1: 32.21MB (16.1MB/s)" is that server's figure;
            # apitx's own counts ("12.00MB relayed") need no name.
            who = "" if update.side == "apitx" else f"{update.side}: "
            line.write(f"{self.label} {update.waited:.0f}s {who}{update.text}")
        return show


def _traced(args: argparse.Namespace) -> bool:
    """True when the trace goes to stderr (``-v``, or ``DEBUG=1`` without
    ``APITX_DEBUG_FILE``): a progress line rewritten there would break its lines."""
    settings = TraceSettings.from_env(debug=args.debug)
    return args.debug or (settings.enabled and not settings.file)
