"""``apitx remote add|list|remove``: remotes as ``lxc remote`` keeps them.

``main(argv)`` takes the words after ``remote`` and returns the exit code
(the ``apitx`` command dispatches to it). Messages go to stderr as one line;
``list`` prints to stdout.

Example::

    $ apitx remote add web https://10.0.0.5:8443 --token eyJjbGllbnRfbmFtZSI6…
    $ apitx remote list
    $ apitx -e web: instances
    $ apitx remote remove web
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Dict, Optional, Sequence

from ._exceptions import APITXError
from ._exit import EXIT_OK, EXIT_USAGE, exit_code
from ._remote_add import add_remote
from ._remotes import RemoteSettings, list_remotes, remove_remote

EXAMPLES = """\
examples:
  apitx remote add web https://10.0.0.5:8443 --token TOKEN   TOKEN from `lxc config trust add`
  apitx remote add web --token TOKEN                         the token knows the address
  apitx remote add old https://10.0.0.6:8443 --password - --fingerprint sha256:…
                                     (LXD 5.0's core.trust_password, read from stdin)
  apitx remote list
  apitx -e web: instances
  apitx remote remove web

apitx writes remotes to $APITX_CONF (default ~/.config/apitx) in lxc's format:
LXD_CONF=$APITX_CONF lxc remote list shows them too.
"""


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``apitx remote``."""
    parser = argparse.ArgumentParser(
        prog="apitx remote", formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EXAMPLES, description="Manage remotes: servers by name, with their pinned "
                                     "certificate, as lxc and incus keep them.")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="add|list|remove")
    add = verbs.add_parser("add", help="trust a server and be trusted by it")
    add.add_argument("name", help="the remote's name (use it as -e NAME:)")
    add.add_argument("url", nargs="?", help="https://HOST[:8443] (default: the token's address)")
    secret = add.add_mutually_exclusive_group()
    secret.add_argument("--token", help="a trust token from `lxc config trust add` ('-': stdin)")
    secret.add_argument("--password", help="the server's core.trust_password ('-': stdin)")
    add.add_argument("--fingerprint", metavar="sha256:HEX",
                     help="the server certificate's fingerprint, checked out of band")
    add.add_argument("--accept-certificate", action="store_true",
                     help="trust the certificate the server presents (shown) unchecked")
    add.add_argument("--project", help="the project requests to this remote use")
    listing = verbs.add_parser("list", help="every remote, and the config dir it comes from")
    listing.add_argument("--format", choices=("table", "json"), default="table")
    remove = verbs.add_parser("remove", help="forget a remote added by apitx")
    remove.add_argument("name")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``apitx remote ...``; return the exit code."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0), usage errors (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        return {"add": _add, "list": _list, "remove": _remove}[args.verb](args)
    except APITXError as exc:
        sys.stderr.write(f"apitx remote: {exc}\n")
        return exit_code(exc)


def _secret(value: Optional[str]) -> Optional[str]:
    """``-`` reads the secret from stdin, so it stays out of ps and shell history."""
    return sys.stdin.readline().strip() if value == "-" else value


def _add(args: argparse.Namespace) -> int:
    remote = add_remote(args.name, args.url, token=_secret(args.token),
                        password=_secret(args.password), fingerprint=args.fingerprint,
                        accept_certificate=args.accept_certificate, project=args.project)
    sys.stderr.write(f"remote {remote.name} added: {remote.addr}, certificate pinned in "
                     f"{remote.server_cert}\n")
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    remotes = list_remotes()
    if args.format == "json":
        sys.stdout.write(json.dumps([_row(r) for r in remotes], indent=4) + "\n")
        return EXIT_OK
    rows = [["NAME", "URL", "PROTOCOL", "PROJECT", "PINNED", "CONFIG"]]
    rows += [[r["name"], r["addr"], r["protocol"], r["project"] or "",
              "yes" if r["server_cert"] else "no", r["config"]]
             for r in map(_row, remotes)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        sys.stdout.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() + "\n")
    return EXIT_OK


def _row(remote: RemoteSettings) -> Dict[str, Any]:
    return {"name": remote.name, "addr": remote.addr, "protocol": remote.protocol,
            "project": remote.project, "server_cert": remote.server_cert,
            "config": remote.config_dir.path}


def _remove(args: argparse.Namespace) -> int:
    removed = remove_remote(args.name)
    sys.stderr.write(f"remote {removed.name} removed from {removed.config_dir.path}\n")
    return EXIT_OK
