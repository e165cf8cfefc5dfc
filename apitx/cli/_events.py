"""``apitx events``: watch LXD's event stream.

    apitx events [-e ENDPOINT] [--type T]... [--project P | --all-projects]
                 [--count N] [--timeout S]

One JSON object per line when stdout is not a terminal (for ``jq`` and
scripts); one readable line per event on a terminal. ``--count N`` stops
after N events, ``--timeout S`` after S seconds (both exit 0: that is the
watch the user asked for; a count below 1 or a timeout that is not a finite
number > 0 is refused before connecting). A stream the server drops exits
3, as any lost connection of ``apitx`` does; Ctrl-C exits 130.

Example: the first lifecycle event, made by updating an instance until
the watch has seen one (it subscribes first, so no fixed delay would be safe):

>>> shell('''apitx events --type lifecycle --count 1 --timeout 60 >/tmp/$c2.out & w=$!
... while kill -0 $w 2>/dev/null; do
...     apitx -X PATCH -d '{"config": {"user.note": "hi"}}' instances/$c1 >/dev/null
... done; grep -o '"type":"lifecycle"' /tmp/$c2.out; rm /tmp/$c2.out''')
"type":"lifecycle"
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any, Dict, Optional, Sequence

from .. import Event, EventStream, events
from ._exit import EXIT_OK, TABLE, UsageError
from ._input import utf8
from ._options import (add_connection_options, connect, new_parser, positive_count,
                       positive_seconds)
from ._output import ResultWriter, stdout_writer
from ._process import Failures, run_command

#: Ctrl-C is how a watch without --count or --timeout ends: no message.
FAILURES = Failures(interrupted=None)


def build_parser() -> argparse.ArgumentParser:
    parser = new_parser("apitx events", "Watch LXD's events.", TABLE)
    add_connection_options(parser)
    parser.add_argument("--type", metavar="TYPE", action="append", dest="types",
                        help="lifecycle, operation or logging (repeatable; default: all)")
    parser.add_argument("--all-projects", action="store_true", help="events of every project")
    parser.add_argument("--count", metavar="N", type=positive_count,
                        help="stop after N events (N >= 1)")
    parser.add_argument("--timeout", metavar="SECONDS", type=positive_seconds,
                        help="stop after this long (a number > 0)")
    return parser


def main(argv: Sequence[str]) -> int:
    """Run ``apitx events``; return the exit code."""
    return run_command(build_parser().parse_args, run, argv, FAILURES)


def run(args: argparse.Namespace) -> int:
    selection = _selection(args)
    out = stdout_writer("the events", "redirect it (>/dev/null)")
    until = None if args.timeout is None else time.monotonic() + args.timeout
    with connect(args) as api, events(api, **selection) as stream:
        _watch(stream, out, args.count, until)
    return EXIT_OK


def _selection(args: argparse.Namespace) -> Dict[str, Any]:
    """``events()``'s choice of types and projects, from the options."""
    if args.project and args.all_projects:
        raise UsageError("give --project or --all-projects, not both")
    return {"types": None if args.types is None else [utf8("--type", t) for t in args.types],
            "project": None if args.project is None else utf8("--project", args.project),
            "all_projects": args.all_projects}


def _watch(stream: EventStream, out: ResultWriter, count: Optional[int],
           until: Optional[float]) -> None:
    """Print events until ``count`` of them, or the time ``until``
    (``time.monotonic()``), or the end of the stream."""
    readable = out.stream.isatty()
    seen = 0
    while count is None or seen < count:
        event = stream.next_event(None if until is None else until - time.monotonic())
        if event is None:
            return  # the --timeout passed
        out.write_now(_line(event, readable).encode("utf-8"))
        seen += 1


def _line(event: Event, readable: bool) -> str:
    """An event as one line: compact JSON, or for a person (``readable``) its
    time, type, project and what happened."""
    if not readable:
        return json.dumps({"type": event.type, "timestamp": event.timestamp,
                           "location": event.location, "project": event.project,
                           "metadata": event.metadata}, separators=(",", ":")) + "\n"
    meta = event.metadata if isinstance(event.metadata, dict) else {}
    what = meta.get("action") or meta.get("description") or meta.get("message") or ""
    return (f"{event.timestamp} {event.type:<9} {event.project or '-'} "
            f"{what} {meta.get('status', '')} {meta.get('source', '')}".rstrip() + "\n")
