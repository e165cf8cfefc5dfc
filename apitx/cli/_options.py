"""The options every ``apitx`` command shares, and the checks of their values.

``-e``/``--cert``/``--key``/``--cacert`` say where the server is and how to
trust it, with the same meaning in every command; ``--help`` and
``--version`` write as results are written (a failure is one line, exit 5);
number options are refused at parse time with the usage exit code when the
library would refuse them later (NaN, infinity, negative).

Example:

>>> parser = new_parser('apitx events', 'Watch the events.')
>>> add_connection_options(parser)
>>> _ = parser.add_argument('--timeout', type=positive_seconds)
>>> args = parser.parse_args(['--timeout', '2.5'])
>>> args.timeout, connect(args).get('/1.0').metadata['api_status']
(2.5, 'stable')
"""

from __future__ import annotations

import argparse
import math
from typing import Any, Dict, List, Optional, Tuple

from .. import API, __version__
from ._exit import UsageError
from ._output import stdout_writer


def new_parser(prog: str, description: str, epilog: Optional[str] = None) -> argparse.ArgumentParser:
    """A parser whose ``-h``/``--help`` is :class:`PrintAndExit`'s; epilogs keep their lines."""
    parser = argparse.ArgumentParser(prog=prog, description=description, epilog=epilog,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     add_help=False)
    add_help_option(parser)
    return parser


def add_help_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-h", "--help", action=PrintAndExit, help="show this help and exit")


class PrintAndExit(argparse.Action):
    """``--help`` and ``--version``: print, then exit 0.

    argparse's own actions drop a failed write in silence (exit 0 on a full
    disk); these write as the result is written, so a failure is one line.
    """

    def __init__(self, option_strings: List[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: Optional[str] = None) -> None:
        text = f"apitx {__version__}\n" if self.dest == "version" else parser.format_help()
        stdout_writer("the help").write(text.encode("utf-8"))
        parser.exit()


def _number_of_seconds(text: str, *, zero_ok: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of seconds {'>=' if zero_ok else '>'} 0")
    return value


def seconds(text: str) -> float:
    """An argparse type: a finite number of seconds >= 0 (``--wait --timeout 0``: look once).

    >>> seconds('2.5')
    2.5
    """
    return _number_of_seconds(text, zero_ok=True)


def positive_seconds(text: str) -> float:
    """An argparse type: a finite number of seconds > 0 (``nan``, ``inf``, ``-1``
    and ``0`` are refused at parse time, as the library would refuse them).

    >>> positive_seconds('0.5')
    0.5
    """
    return _number_of_seconds(text, zero_ok=False)


def positive_count(text: str) -> int:
    """An argparse type: a whole number >= 1.

    >>> positive_count('3')
    3
    """
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return value


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


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    """The endpoint options, ``--project`` and ``-v``, for the subcommands."""
    add_endpoint_options(parser)
    parser.add_argument("--project", metavar="NAME", help="the project (default: the server's)")
    parser.add_argument("-v", "--debug", action="store_true",
                        help="trace every request and websocket message to stderr; "
                             "tracebacks on errors")


def connect(args: argparse.Namespace, **options: Any) -> API:
    """The API the endpoint options name, with ``options`` for :meth:`API.factory`."""
    return API.factory(args.endpoint, debug=args.debug, **tls_options(args), **options)


def tls_options(args: argparse.Namespace) -> Dict[str, Any]:
    """``cert=`` and ``verify=`` for API.factory from ``--cert``/``--key``/``--cacert``."""
    if args.key and not args.cert:
        raise UsageError("--key needs --cert")
    options: Dict[str, Any] = {}
    if args.cert:
        options["cert"] = (args.cert, args.key) if args.key else args.cert
    if args.cacert:
        options["verify"] = args.cacert
    return options


class Refused(argparse.Action):
    """An option another client has (``lxc copy --refresh``) that this
    command does not do: refused as soon as it is read, in one line naming
    it and why (exit 2), before anything is sent. Muscle memory then meets
    a clear no, never an option silently ignored.

    >>> parser = new_parser('apitx copy', 'Copy an instance.')
    >>> _ = parser.add_argument('--refresh', action=Refused, nargs=0,
    ...                         help='incremental copies are not supported')
    >>> parser.parse_args(['--refresh'])
    Traceback (most recent call last):
      ...
    apitx.cli._exit.UsageError: --refresh: incremental copies are not supported; nothing was sent
    """

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: Optional[str] = None) -> None:
        raise UsageError(f"{option_string}: {self.help}; nothing was sent")


#: An option refused by :func:`add_refused_options`: its flags, whether it
#: takes a value, and why it is refused.
RefusedOption = Tuple[Tuple[str, ...], bool, str]


def add_refused_options(parser: argparse.ArgumentParser, title: str,
                        refused: List[RefusedOption]) -> None:
    """Options of ``refused`` (``(flags, takes_a_value, why)``) in a help
    group of their own, each refused when given (:class:`Refused`)."""
    group = parser.add_argument_group(title)
    for flags, takes_value, why in refused:
        group.add_argument(*flags, action=Refused, nargs=1 if takes_value else 0,
                           metavar="VALUE" if takes_value else None, help=why)
