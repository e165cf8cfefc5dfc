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
from typing import Callable, Dict, Optional, Sequence, Tuple

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

__all__ = ["main"]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command on ``argv`` (default: ``sys.argv[1:]``); return its exit code
    (the console script exits with it).

    Whatever goes wrong ends as one line on stderr and an exit code from the
    table in ``--help``; ``-v`` adds the traceback of a failed request and of
    a bug of apitx.
    """
    claim_standard_fds()
    words = list(sys.argv[1:] if argv is None else argv)
    if words and words[0] in SUBCOMMANDS:
        command, words = _command(*SUBCOMMANDS[words[0]]), words[1:]
    else:
        command = _command("._request", "main")
    if argv is None:
        _freeze_imports()
    return command(words)


def _freeze_imports() -> None:
    """Keep what the imports made out of every later garbage collection.

    Run as the process's command (``argv`` None: the console script,
    ``python -m apitx``), the modules, classes and functions imported so far
    live until the process ends. CPython's finalization still walks them
    all, in several collections, after the command is done: measured,
    30-50 ms of CPU at exit for the ~27,000 objects a copy's imports make,
    against ~2 ms once they are frozen (``gc.freeze``), the most of a
    command's time after its work. A program calling ``main(argv)`` itself
    keeps its own collector untouched: nothing is frozen then.
    """
    gc.freeze()


def _command(module: str, function: str) -> Callable[[Sequence[str]], int]:
    """The entry point ``function`` of one command's ``module``, imported now."""
    command: Callable[[Sequence[str]], int] = getattr(importlib.import_module(module, __name__),
                                                      function)
    return command
