"""``apitx remote add|list|remove``: remotes as ``lxc remote`` keeps them.

``main(argv)`` takes the words after ``remote`` and returns the exit code
(the ``apitx`` command dispatches to it). Messages go to stderr as one line;
``list`` prints to stdout. A password in an address (``https://u:pw@host``)
is never shown.

Example: in a config dir of its own (``APITX_CONF``) holding a client
certificate the second LXD trusts (a new one needs ``--token``: from
``lxc config trust add``); its instances are ``lxd2:NAME``:

>>> shell('''export APITX_CONF=$(mktemp -d); cp /var/lib/apitx-sandbox/client.* $APITX_CONF
... apitx remote add lxd2 https://127.0.2.1:8443 --accept-certificate
... apitx remote list | grep ^lxd2; apitx -e lxd2: --compact instances/nosuch
... apitx remote remove lxd2; rm -r $APITX_CONF''')
apitx: remote lxd2 added: https://127.0.2.1:8443, certificate pinned in /tmp/.../servercerts/lxd2.crt
lxd2    https://127.0.2.1:8443              lxd            default  yes     /tmp/...
apitx: GET https://127.0.2.1:8443/1.0/instances/nosuch: Instance not found
apitx: remote lxd2 removed from /tmp/...
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Dict, List, Optional, Sequence

from .. import RemoteSettings, add_remote, list_remotes, remove_remote
from ._exit import EXIT_OK, TABLE, UsageError
from ._options import add_help_option, new_parser
from ._output import stdout_writer
from ._process import Failures, run_command, say

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
LXD_CONF=$APITX_CONF lxc remote list shows them too. `local` (the local LXD or
Incus socket) is there even when no config names it, as in lxc.

""" + TABLE


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``apitx remote``."""
    parser = new_parser("apitx remote", "Manage remotes: servers by name, with their pinned "
                                        "certificate,\nas lxc and incus keep them.", EXAMPLES)
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="add|list|remove")
    add, listing, remove = (verbs.add_parser(verb, help=text, add_help=False) for verb, text in (
        ("add", "trust a server and be trusted by it"),
        ("list", "every remote, and the config dir it comes from"),
        ("remove", "forget a remote added by apitx")))
    for verb in (add, listing, remove):
        add_help_option(verb)
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
    listing.add_argument("--format", choices=("table", "json"), default="table")
    remove.add_argument("name", help="the remote's name, as `apitx remote list` shows it")
    return parser


def main(argv: Sequence[str]) -> int:
    """Run ``apitx remote ...``; return the exit code."""
    return run_command(build_parser().parse_args, run, argv, Failures())


def run(args: argparse.Namespace) -> int:
    {"add": _add, "list": _list, "remove": _remove}[args.verb](args)
    return EXIT_OK


def _secret(value: Optional[str], option: str) -> Optional[str]:
    """``-`` reads the secret from stdin, so it stays out of ps and shell history."""
    if value != "-":
        return value
    if sys.stdin is None:
        raise UsageError(f"{option} -: stdin is closed: pipe the secret in; nothing was sent")
    return sys.stdin.readline().strip()


def _add(args: argparse.Namespace) -> None:
    remote = add_remote(args.name, args.url, token=_secret(args.token, "--token"),
                        password=_secret(args.password, "--password"),
                        fingerprint=args.fingerprint, accept_certificate=args.accept_certificate,
                        project=args.project)
    say(f"remote {remote.name} added: {remote.shown_addr}, certificate pinned in "
        f"{remote.server_cert}")


def _list(args: argparse.Namespace) -> None:
    rows = [_row(remote) for remote in list_remotes()]
    output = stdout_writer("the list", "redirect it (>/dev/null)")
    if args.format == "json":
        output.write((json.dumps(rows, indent=4) + "\n").encode("utf-8"))
        return
    output.write(_table(rows).encode("utf-8"))


def _row(remote: RemoteSettings) -> Dict[str, Any]:
    return {"name": remote.name, "addr": remote.shown_addr, "protocol": remote.protocol,
            "project": remote.project, "server_cert": remote.server_cert,
            "config": None if remote.builtin else remote.config_dir.path}


def _table(rows: List[Dict[str, Any]]) -> str:
    """The rows as a table, columns as wide as their widest cell."""
    cells = [["NAME", "URL", "PROTOCOL", "PROJECT", "PINNED", "CONFIG"]] + [
        _cells(row) for row in rows]
    widths = [max(map(len, column)) for column in zip(*cells)]
    return "".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() + "\n"
                   for line in cells)


def _cells(row: Dict[str, Any]) -> List[str]:
    return [row["name"], row["addr"], row["protocol"], row["project"] or "",
            "yes" if row["server_cert"] else "no", row["config"] or "(built-in)"]


def _remove(args: argparse.Namespace) -> None:
    removed = remove_remote(args.name)
    say(f"remote {removed.name} removed from {removed.config_dir.path}")
