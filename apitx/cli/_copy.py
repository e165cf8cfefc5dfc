"""``apitx copy`` and ``apitx move``: instances between servers, or on one,
with the arguments of ``lxc copy`` and ``lxc move`` (and ``incus``'s).

    apitx copy [<remote>:]<source> [<remote>:][<destination>] [--mode pull|push|relay]
               [--target MEMBER] [-s POOL] [--instance-only] [--stateless] [-e ...] [-q] [-v]
    apitx move [<remote>:]<instance> [<remote>:][<instance>] [the same options]

Each is one call of :mod:`apitx.migrate`, which checks what it can before
anything is sent and names the side that failed. Where ``lxc`` means
something apitx does not do, the command refuses (exit 2) rather than do
something else:

- ``lxc`` copies or moves a running instance *live* (stateful, needing CRIU)
  unless ``--stateless``: apitx copies what is on disk only, so a running
  instance needs ``--stateless``, as ``lxc`` would need it without CRIU;
- a snapshot as the source (``c1/snap0``: a new instance from it, or a
  snapshot rename), ``--storage`` within one server, and the options that
  change the copy (``--profile``, ``--config``, ``--device``...) are
  refused, each in one line naming it.

The rest follows ``lxc``: ``copy c1 lxd2:`` keeps the name; the same remote
on both sides is a copy on that server (it needs a new name); ``move c1 c2``
renames; ``move c1 --target m2`` moves to another member of a cluster (the
server does it; ``--mode``, ``--storage`` and ``--instance-only`` cannot go
with it); ``move`` between servers copies, checks the copy, then deletes
the source.

Example: a copy on one server, then a move (a rename) and back; ``lxd2:c1``
would name an instance on remote ``lxd2`` (``apitx remote``):

>>> shell('apitx copy $c1 $c2 && apitx move $c2 $c2-b && apitx move $c2-b $c2')
>>> shell('apitx copy $c1 $c2')
apitx: the source (lxd 5.0.2 (API 1.0) at unix:/var/lib/lxd/unix.socket) already has an instance
apitx-...: give another name (new_name=) or delete that one first; nothing was sent
[exit 1]
"""

from __future__ import annotations

import argparse
from typing import List, Sequence, Tuple
from urllib.parse import quote

from .. import API, migrate
from ._exit import EXIT_OK, UsageError
from ._input import optional_utf8
from ._options import RefusedOption, add_refused_options, new_parser
from ._process import Failures, run_command
from ._transfer import TRANSFER_TABLE, Place, Transfer, add_transfer_options

COPY_EPILOG = """\
examples:
  apitx copy c1 c2                          a copy on the same server
  apitx copy c1 lxd2:                       to the remote lxd2, same name (lxd2 as lxc
                                            and incus keep remotes, or apitx remote add)
  apitx copy lxd2:c1 incus2:web --mode relay --instance-only
  apitx copy c1 c1-copy -e https://10.0.0.5:8443 --cert c.crt --key c.key --cacert s.crt
  apitx copy c1 cluster: --target m2 -s fast

Names without REMOTE: are on the server of -e (default: the local LXD or
Incus). A running instance is copied as it is on disk with --stateless only
(lxc would copy it live, which needs CRIU). -e here is the endpoint, as in
every apitx command (lxc's -e, --ephemeral, is refused).

""" + TRANSFER_TABLE

MOVE_EPILOG = """\
examples:
  apitx move c1 c2                          rename (on one server)
  apitx move c1 lxd2:                       to lxd2: copied, checked, then deleted here
  apitx move lxd2:c1 incus2:c1 --mode push --instance-only
  apitx move cluster:c1 --target m3         to another member (the cluster does it)

The instance must be stopped to move between servers; within a cluster a
running one is moved with --stateless (stopped, moved, started again).

""" + TRANSFER_TABLE

#: ``lxc``'s options that change the new instance: apitx keeps the source's.
_CHANGES: List[RefusedOption] = [
    (("-c", "--config"), True, "the copy keeps the source's config: change it afterwards"),
    (("-d", "--device"), True, "the copy keeps the source's devices: change them afterwards"),
    (("-p", "--profile"), True,
     "the copy keeps the source's profiles, which the target must have"),
    (("--no-profiles",), False, "the copy keeps the source's profiles"),
    (("--target-project",), True, "the copy is made in the same project on both sides "
                                  "(--project names it)"),
    (("--allow-inconsistent",), False, "a copy fails rather than skip files that change"),
]
_COPY_ONLY: List[RefusedOption] = [
    (("--ephemeral",), False, "the copy is ephemeral when the source is"),
    (("--refresh",), False, "incremental copies are not supported"),
    (("--refresh-exclude-older",), False, "incremental copies are not supported"),
]


def build_parser(verb: str) -> argparse.ArgumentParser:
    """The parser of ``apitx copy`` or ``apitx move`` (``verb``)."""
    copy = verb == "copy"
    parser = new_parser(
        f"apitx {verb}",
        "Copy an instance within or between LXD and Incus servers, as lxc copy does."
        if copy else "Move or rename an instance within or between LXD and Incus servers,\n"
                     "as lxc move does.",
        COPY_EPILOG if copy else MOVE_EPILOG)
    parser.add_argument("source", metavar="[REMOTE:]SOURCE" if copy else "[REMOTE:]INSTANCE")
    parser.add_argument("destination", nargs="?",
                        metavar="[REMOTE:]DESTINATION" if copy else "[REMOTE:][INSTANCE]")
    parser.add_argument("--mode", choices=migrate.MODES,
                        help="who carries the data: pull (the target's daemon connects to the "
                             "source; default), push (the source's to the target) or relay "
                             "(apitx carries it: for servers that cannot reach each other)")
    parser.add_argument("--target", metavar="MEMBER", help="the cluster member to put it on")
    parser.add_argument("-s", "--storage", metavar="POOL",
                        help="the target's storage pool for its root disk")
    parser.add_argument("--instance-only", action="store_true", help="without its snapshots")
    parser.add_argument("--stateless", action="store_true",
                        help="a running instance as it is on disk (apitx never copies live)")
    add_transfer_options(parser)
    add_refused_options(parser, "lxc options apitx refuses (exit 2)",
                        _CHANGES + _COPY_ONLY if copy else _CHANGES)
    indent = " " * len(f"usage: apitx {verb} ")
    parser.usage = (f"apitx {verb} [REMOTE:]{'SOURCE' if copy else 'INSTANCE'} "
                    f"[REMOTE:][{'DESTINATION' if copy else 'INSTANCE'}]\n"
                    f"{indent}[--mode pull|push|relay] [--target MEMBER] [-s POOL]\n"
                    f"{indent}[--instance-only] [--stateless] [-e ENDPOINT] [-q] [-v]")
    return parser


def copy_main(argv: Sequence[str]) -> int:
    """Run ``apitx copy``; return the exit code."""
    return run_command(build_parser("copy").parse_args, run_copy, argv, Failures())


def move_main(argv: Sequence[str]) -> int:
    """Run ``apitx move``; return the exit code."""
    return run_command(build_parser("move").parse_args, run_move, argv, Failures())


def run_copy(args: argparse.Namespace) -> int:
    source, destination = _places(args, "SOURCE", "copying from or to a snapshot")
    if args.destination is None:
        raise UsageError("give the DESTINATION: a new NAME on the same server, or REMOTE: "
                         "(REMOTE:NAME) for another; nothing was sent")
    between = destination.remote != source.remote
    if not between and destination.name in ("", source.name):
        raise UsageError(f"DESTINATION {args.destination}: the same server as the source: give "
                         "the copy a name of its own; nothing was sent")
    with Transfer(args, f"Copying {source}") as transfer:
        here, there = transfer.api(source.remote), transfer.api(destination.remote)
        if between:
            _refuse_live(here, source.name, args.stateless, "copy")
        migrate.copy_instance(here, source.name, there, new_name=destination.name or None,
                              mode=args.mode or "pull", snapshots=not args.instance_only,
                              target_member=args.target, pool=args.storage,
                              progress=transfer.progress)
    return EXIT_OK


def run_move(args: argparse.Namespace) -> int:
    if args.destination is None and args.target is None and args.storage is None:
        raise UsageError("give the DESTINATION ([REMOTE:]NAME), or --target MEMBER to move "
                         "the instance within a cluster; nothing was sent")
    source, destination = _places(args, "INSTANCE", "moving or renaming a snapshot")
    within = destination.remote == source.remote
    if within:
        _check_move_within(args, source, destination)
    with Transfer(args, f"Moving {source}") as transfer:
        here = transfer.api(source.remote)
        if not within:
            migrate.move_instance(here, source.name, transfer.api(destination.remote),
                                  new_name=destination.name or None, mode=args.mode or "pull",
                                  snapshots=not args.instance_only, target_member=args.target,
                                  pool=args.storage, progress=transfer.progress)
            return EXIT_OK
        if args.target is not None:
            _refuse_live(here, source.name, args.stateless, "move")
        migrate.move_instance(here, source.name, new_name=destination.name or None,
                              target_member=args.target, progress=transfer.progress)
    return EXIT_OK


def _places(args: argparse.Namespace, what: str, snapshots: str) -> Tuple[Place, Place]:
    """The source and the destination (the source's server when none is
    given), neither a snapshot (``snapshots`` says what that would be); the
    options' words checked (``args`` keeps them)."""
    args.target = optional_utf8("--target", args.target)
    args.storage = optional_utf8("--storage", args.storage)
    source = Place.parse(args.source, what)
    destination = Place(source.remote, "") if args.destination is None else \
        Place.parse(args.destination, "DESTINATION")
    if not source.name:
        raise UsageError(f"{what} {args.source}: give the instance's name; nothing was sent")
    for place in (source, destination):
        if place.snapshot is not None:
            raise UsageError(f"{place}: {snapshots} is not supported; nothing was sent")
    return source, destination


def _check_move_within(args: argparse.Namespace, source: Place, destination: Place) -> None:
    """The options ``lxc move`` refuses on one server, and what apitx does not do there."""
    if args.target is not None:
        given: List[str] = [option for option, value in (
            ("--mode", args.mode), ("--storage", args.storage),
            ("--instance-only", args.instance_only)) if value]
        if given:
            raise UsageError(f"{given[0]} cannot be used with --target on one server (the "
                             "cluster moves the instance itself); nothing was sent")
    elif args.storage is not None:
        raise UsageError("--storage: moving an instance to another pool of the same server is "
                         "not supported; nothing was sent")
    elif destination.name in ("", source.name):
        raise UsageError(f"DESTINATION {args.destination}: the same server as the instance: "
                         "give its new name; nothing was sent")


def _refuse_live(api: API, name: str, stateless: bool, verb: str) -> None:
    """Refuse a running instance without ``--stateless``: ``lxc`` would
    migrate it live (with CRIU), and apitx only ever copies what is on disk.

    One GET of the instance; a missing one is left to :mod:`apitx.migrate`,
    whose message names the side.
    """
    if stateless:
        return
    answer = api.get(f"instances/{quote(name, safe='')}", validate=False)
    state = answer.metadata if answer.ok and isinstance(answer.metadata, dict) else {}
    if state.get("status") == "Running":
        raise UsageError(f"instance {name} is running: lxc would {verb} it live (with CRIU), "
                         f"which apitx does not do; add --stateless to {verb} it as it is on "
                         "disk; nothing was changed")
