"""The ``apitx`` command: one request (``apitx PATH``), or a subcommand.

Built only on apitx's public names (what ``apitx.__all__`` exports), as any
program using the library is: a layer contract keeps it off the private
modules. One module a concern:

- ``_request``: the request command (``lxc query`` with tracing, curl
  export, progress and binary output);
- ``_exec``, ``_events``, ``_remote``: the subcommands;
- ``_copy`` (copy, move) and ``_backup`` (export, import): instances
  between servers, as ``lxc`` takes them, on ``_transfer``'s shared parts;
- ``_input``: ``-d``, ``-H``, ``-p`` and any argument, checked before sending;
- ``_output``: stdout and ``-o FILE``, JSON and streams, failed writes named;
- ``_wait``: ``--wait``, its progress line and Ctrl-C;
- ``_options``: the options every command shares, and number checks;
- ``_process``: closed descriptors, SIGPIPE, one line and an exit code for
  every failure;
- ``_exit``: the exit-code table.

Example: :func:`main` is the ``apitx`` command (``python -m apitx`` too);
as a program of one's own:

>>> shell('''python3 -c 'import sys; from apitx.cli import main
... sys.exit(main(["instances/nosuch"]))' ''')
apitx: GET unix:/var/lib/lxd/unix.socket /1.0/instances/nosuch: Instance not found
[exit 1]
"""

from __future__ import annotations

import gc
import importlib
import sys
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from ._process import claim_standard_fds

#: ``apitx NAME ...`` runs a subcommand instead of a request: the first word
#: is matched before anything else (an API path named like one is written
#: ``/1.0/remote``). Each maps to its module, imported only when it is the
#: command run (issue 19: a request should not pay for exec's terminal
#: handling or events' parser).
SUBCOMMANDS: Dict[str, Tuple[str, str]] = {
    "copy": ("._copy", "copy_main"),
    "events": ("._events", "main"),
    "exec": ("._exec", "main"),
    "export": ("._backup", "export_main"),
    "import": ("._backup", "import_main"),
    "move": ("._copy", "move_main"),
    "remote": ("._remote", "main"),
}

__all__ = ["main", "run"]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command on ``argv`` (default: ``sys.argv[1:]``); return its exit code.

    Whatever goes wrong ends as one line on stderr and an exit code from the
    table in ``--help``; ``-v`` adds the traceback of a failed request and of
    a bug of apitx. The console script runs :func:`run`, which is this as the
    process's own command.
    """
    return _main(list(sys.argv[1:] if argv is None else argv), process=False)


def run() -> int:
    """The ``apitx`` console script and ``python -m apitx``: :func:`main` on
    the process's arguments, as the process's command (its exit code is the
    process's).

    The process ends with the command, so what the command's imports made
    (modules, classes, functions: ~27,000 objects for a copy) is frozen
    (``gc.freeze``) before it runs: CPython's finalization otherwise walks
    them all, in several collections, after the work is done. Measured,
    30-50 ms less at exit. :func:`main` never does it: a program of one's own
    keeps its collector as it was.
    """
    return _main(sys.argv[1:], process=True)


def _main(words: List[str], *, process: bool) -> int:
    claim_standard_fds()
    if words and words[0] in SUBCOMMANDS:
        command, words = _command(*SUBCOMMANDS[words[0]]), words[1:]
    else:
        command = _command("._request", "main")
    if process:
        gc.freeze()
    return command(words)


def _command(module: str, function: str) -> Callable[[Sequence[str]], int]:
    """The entry point ``function`` of one command's ``module``, imported now."""
    command: Callable[[Sequence[str]], int] = getattr(importlib.import_module(module, __name__),
                                                      function)
    return command
