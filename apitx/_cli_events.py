"""`apitx events`: watch LXD's event stream.

    apitx events [-e ENDPOINT] [--type T]... [--project P | --all-projects]
                 [--count N] [--timeout S]

One JSON object per line when stdout is not a terminal (for ``jq`` and
scripts); one readable line per event on a terminal. ``--count N`` stops
after N events, ``--timeout S`` after S seconds (both exit 0: that is the
watch the user asked for). A stream the server drops exits 3, as any lost
connection of `apitx` does; Ctrl-C exits 130.

Example::

    apitx events --type lifecycle --count 1 | jq .metadata.action
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from typing import IO, Optional, Sequence

from ._cli_common import add_connection_options, connect, fail
from ._events import Event, events
from ._exceptions import APITXError
from ._exit import EXIT_BROKEN_PIPE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, exit_code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="apitx events", description="Watch LXD's events.")
    add_connection_options(parser)
    parser.add_argument("--type", metavar="TYPE", action="append", dest="types",
                        help="lifecycle, operation or logging (repeatable; default: all)")
    parser.add_argument("--all-projects", action="store_true", help="events of every project")
    parser.add_argument("--count", metavar="N", type=int, help="stop after N events")
    parser.add_argument("--timeout", metavar="SECONDS", type=float,
                        help="stop after this long")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run `apitx events`; return the exit status."""
    try:
        return _run(build_parser(), argv)
    except SystemExit as exc:  # --help (0), usage errors (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE


def _run(parser: argparse.ArgumentParser, argv: Optional[Sequence[str]]) -> int:
    args = parser.parse_args(argv)
    if args.project and args.all_projects:
        parser.error("give --project or --all-projects, not both")
    out = sys.stdout
    try:
        api = connect(parser, args)
        with events(api, types=args.types, project=args.project,
                    all_projects=args.all_projects) as stream:
            timer = None
            if args.timeout is not None:
                timer = threading.Timer(args.timeout, stream.close)
                timer.daemon = True
                timer.start()
            for seen, event in enumerate(stream, 1):
                _print(event, out)
                if args.count is not None and seen >= args.count:
                    break
            if timer is not None:
                timer.cancel()
    except APITXError as exc:
        return fail(args, exc, exit_code(exc))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_BROKEN_PIPE
    return EXIT_OK


def _print(event: Event, out: IO[str]) -> None:
    if out.isatty():
        meta = event.metadata if isinstance(event.metadata, dict) else {}
        what = meta.get("action") or meta.get("description") or meta.get("message") or ""
        status = meta.get("status", "")
        out.write(f"{event.timestamp} {event.type:<9} {event.project or '-'} "
                  f"{what} {status} {meta.get('source', '')}".rstrip() + "\n")
    else:
        out.write(json.dumps({"type": event.type, "timestamp": event.timestamp,
                              "location": event.location, "project": event.project,
                              "metadata": event.metadata}, separators=(",", ":")) + "\n")
    out.flush()


if __name__ == "__main__":  # python -m apitx._cli_events …
    sys.exit(main())
