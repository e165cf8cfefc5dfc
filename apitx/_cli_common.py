"""What the `apitx exec` and `apitx events` commands share: connection
options, building the API, and exit codes for apitx's own failures.

Example::

    parser = argparse.ArgumentParser(prog='apitx exec')
    add_connection_options(parser)
    api = connect(parser.parse_args(argv))
"""

from __future__ import annotations

import argparse
import sys
import traceback
from typing import Any, Dict

from ._api import API


def add_endpoint_options(parser: argparse.ArgumentParser) -> None:
    """``-e``, ``--cert``, ``--key`` and ``--cacert``: where the server is, and the TLS
    material (every apitx command has them, with these meanings)."""
    parser.add_argument("-e", "--endpoint", metavar="SOCKET|URL|NAME:",
                        help="a socket path, unix:///path, https://host:8443, a remote "
                             "NAME:, or lxd or incus (default: the local LXD or Incus, found "
                             "as `lxc` and `incus` find them)")
    parser.add_argument("--cert", metavar="FILE", help="HTTPS: the client certificate")
    parser.add_argument("--key", metavar="FILE", help="HTTPS: the client certificate's key")
    parser.add_argument("--cacert", metavar="FILE",
                        help="HTTPS: the server certificate (pinned) or CA bundle to trust")


def tls_options(args: argparse.Namespace) -> Dict[str, Any]:
    """``cert=`` and ``verify=`` for API.factory from ``--cert``/``--key``/``--cacert``;
    ValueError when ``--key`` comes without ``--cert``."""
    if args.key and not args.cert:
        raise ValueError("--key needs --cert")
    options: Dict[str, Any] = {}
    if args.cert:
        options["cert"] = (args.cert, args.key) if args.key else args.cert
    if args.cacert:
        options["verify"] = args.cacert
    return options


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    """The endpoint options, ``--project`` and ``-v``, for the subcommands."""
    add_endpoint_options(parser)
    parser.add_argument("--project", metavar="NAME", help="the project (default: the server's)")
    parser.add_argument("-v", "--debug", action="store_true",
                        help="trace every request and websocket message to stderr; "
                             "tracebacks on errors")


def connect(parser: argparse.ArgumentParser, args: argparse.Namespace) -> API:
    """The API the options name (usage errors exit through ``parser.error``)."""
    try:
        options = tls_options(args)
    except ValueError as exc:
        parser.error(str(exc))
    return API.factory(args.endpoint, debug=args.debug, **options)


def fail(args: argparse.Namespace, exc: BaseException, code: int) -> int:
    """Tell the user in one line (with the traceback under ``-v``); return ``code``."""
    if getattr(args, "debug", False):
        traceback.print_exc(file=sys.stderr)
    sys.stderr.write(f"apitx: {exc}\n")
    return code

