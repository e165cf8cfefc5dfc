"""``apitx export`` and ``apitx import``: an instance to a backup file and
back, with the arguments of ``lxc export`` and ``lxc import``.

    apitx export [<remote>:]<instance> [FILE] [--instance-only] [--optimized-storage]
                 [--compression ALGORITHM]
    apitx import [<remote>:] FILE [NAME] [-s POOL]

As ``lxc``: the file defaults to ``backup.tar.gz``; ``import``'s first word
is a remote when it ends with ``:`` and more words follow. Unlike ``lxc``
(which truncates the file first), an export replaces FILE only once the
whole backup has arrived, and a FILE that cannot be written is refused
before the server is asked for anything (exit 2); a disk that fills up
later is one line naming FILE (exit 5). An import reads the backup's index
first, so a name already taken, or an Incus backup for LXD, is refused
before the upload (:mod:`apitx.migrate`).

Example:

>>> shell('apitx export $c1 /tmp/$c2.tar.gz --instance-only && apitx import /tmp/$c2.tar.gz $c2')
>>> shell('''apitx instances/$c2 | grep -o '"status": "[A-Za-z]*"'; rm /tmp/$c2.tar.gz''')
"status": "Stopped"
"""

from __future__ import annotations

import argparse
from contextlib import ExitStack
from typing import List, Optional, Sequence

from .. import migrate
from ._exit import EXIT_OK, UsageError
from ._input import optional_utf8, utf8
from ._options import add_refused_options, new_parser
from ._output import open_file
from ._process import Failures, run_command
from ._transfer import TRANSFER_TABLE, Place, Transfer, add_transfer_options

#: Where ``lxc export`` writes when given no file.
DEFAULT_FILE = "backup.tar.gz"

EXPORT_EPILOG = f"""\
examples:
  apitx export c1                           to ./{DEFAULT_FILE}
  apitx export lxd2:c1 c1.tar.gz --instance-only
  apitx export c1 c1.tar --compression none

""" + TRANSFER_TABLE

IMPORT_EPILOG = """\
examples:
  apitx import c1.tar.gz                    as the backup's own name, on the local server
  apitx import lxd2: c1.tar.gz c1-restored -s fast

""" + TRANSFER_TABLE


def build_export_parser() -> argparse.ArgumentParser:
    parser = new_parser("apitx export", "Export an instance to a backup file, as lxc export "
                                        "does.", EXPORT_EPILOG)
    parser.add_argument("instance", metavar="[REMOTE:]INSTANCE")
    parser.add_argument("file", metavar="FILE", nargs="?", default=DEFAULT_FILE,
                        help=f"where to write the backup (default: {DEFAULT_FILE})")
    parser.add_argument("--instance-only", action="store_true", help="without its snapshots")
    parser.add_argument("--optimized-storage", action="store_true",
                        help="the storage driver's own format (restored only on a pool of "
                             "the same driver)")
    parser.add_argument("--compression", metavar="ALGORITHM",
                        help="gzip, none, ... (default: the server's)")
    add_transfer_options(parser)
    parser.usage = ("apitx export [REMOTE:]INSTANCE [FILE] [--instance-only]\n"
                    "                    [--optimized-storage] [--compression ALGORITHM]\n"
                    "                    [-e ENDPOINT] [-q] [-v]")
    return parser


def build_import_parser() -> argparse.ArgumentParser:
    parser = new_parser("apitx import", "Import a backup file as an instance, as lxc import "
                                        "does.", IMPORT_EPILOG)
    parser.add_argument("words", metavar="[REMOTE:] FILE [NAME]", nargs="+",
                        help="the server (default: -e's), the backup, the instance's name "
                             "(default: the backup's)")
    parser.add_argument("-s", "--storage", metavar="POOL", help="the pool to import it into")
    add_transfer_options(parser)
    add_refused_options(parser, "lxc options apitx refuses (exit 2)", [
        (("-d", "--device"), True, "the instance keeps the backup's devices: change them "
                                   "afterwards")])
    parser.usage = "apitx import [REMOTE:] FILE [NAME] [-s POOL] [-e ENDPOINT] [-q] [-v]"
    return parser


def export_main(argv: Sequence[str]) -> int:
    """Run ``apitx export``; return the exit code."""
    return run_command(build_export_parser().parse_args, run_export, argv, Failures())


def import_main(argv: Sequence[str]) -> int:
    """Run ``apitx import``; return the exit code."""
    return run_command(build_import_parser().parse_args, run_import, argv, Failures())


def run_export(args: argparse.Namespace) -> int:
    place = Place.parse(args.instance, "INSTANCE")
    if not place.name or place.snapshot is not None:
        raise UsageError(f"INSTANCE {args.instance}: give an instance's name (a snapshot "
                         "cannot be exported alone); nothing was sent")
    path = utf8("FILE", args.file)
    compression = optional_utf8("--compression", args.compression)
    with Transfer(args, f"Exporting {place}") as transfer, ExitStack() as files:
        api = transfer.api(place.remote)
        out = open_file(path, path, files)  # before anything is sent
        migrate.export_instance(api, place.name, out.stream, instance_only=args.instance_only,
                                optimized=args.optimized_storage, compression=compression,
                                progress=transfer.progress)
    return EXIT_OK


def run_import(args: argparse.Namespace) -> int:
    words: List[str] = [utf8("[REMOTE:] FILE [NAME]", word) for word in args.words]
    remote: Optional[str] = None
    if len(words) > 1 and words[0].endswith(":"):
        place = Place.parse(words.pop(0), "REMOTE")
        if place.remote is None or place.name:
            raise UsageError(f"{place}: give the remote's name and a colon (lxd2:), then "
                             "the FILE; nothing was sent")
        remote = place.remote
    if len(words) > 2:
        raise UsageError(f"{' '.join(words[2:])}: too many words; give [REMOTE:] FILE [NAME]; "
                         "nothing was sent")
    path, name = words[0], (words[1] if len(words) > 1 else None)
    with Transfer(args, f"Importing {path}") as transfer:
        migrate.import_instance(transfer.api(remote), path, name=name,
                                pool=optional_utf8("--storage", args.storage),
                                progress=transfer.progress)
    return EXIT_OK
