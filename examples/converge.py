#!/usr/bin/env python3
"""Converge a small LXD setup, playbook-style, and report what changed.

The setup: an image from a local unified tarball (with an alias), a profile,
and two instances using both, one running and one stopped. Run it twice: the
second run reports no change and sends no write.

    examples/converge.py IMAGE.tar.gz [--prefix demo] [--check] [--absent] [--socket PATH]

``--check`` is a dry run (GETs only); ``--absent`` converges the other way,
removing the instances, the profile and the image (by its fingerprint).
Exit status: 0, and the last line says how many tasks changed something.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Callable, List, Tuple

from apitx import API, APINotFoundException, ensure


def tasks(api: API, args: argparse.Namespace) -> List[Tuple[str, Callable[..., ensure.Change]]]:
    p = args.prefix
    image, profile = f"{p}-image", f"{p}-profile"
    if args.absent:
        return [
            (f"instance {p}-web absent", lambda check: ensure.instance_absent(api, f"{p}-web", check)),
            (f"instance {p}-db absent", lambda check: ensure.instance_absent(api, f"{p}-db", check)),
            (f"profile {profile} absent", lambda check: ensure.profile_absent(api, profile, check)),
            ("image absent", lambda check: ensure.image_absent(
                api, ensure.file_fingerprint(args.tarball), check)),
        ]
    return [
        (f"image {image}", lambda check: ensure.image_present(api, args.tarball, alias=image,
                                                             check=check)),
        (f"profile {profile}", lambda check: ensure.profile_present(
            api, profile, config={"limits.memory": "128MB", "user.db_password": "s3cret"},
            devices={"scratch": {"type": "disk", "source": "/tmp", "path": "/mnt/scratch"}},
            description="converge.py demo", check=check)),
        (f"instance {p}-web", lambda check: ensure.instance_present(
            api, f"{p}-web", source=image, config={"user.role": "web"},
            profiles=["default", profile], check=check)),
        (f"instance {p}-web Running", lambda check: ensure.instance_state(
            api, f"{p}-web", "Running", check)),
        (f"instance {p}-db", lambda check: ensure.instance_present(
            api, f"{p}-db", source=image, config={"user.role": "db"},
            profiles=["default", profile], check=check)),
        (f"instance {p}-db Stopped", lambda check: ensure.instance_state(
            api, f"{p}-db", "Stopped", check)),
    ]


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tarball", help="a unified image tarball (metadata.yaml + rootfs/)")
    parser.add_argument("--prefix", default="converge", help="prefix of every name made")
    parser.add_argument("--check", action="store_true", help="dry run: report, change nothing")
    parser.add_argument("--absent", action="store_true", help="remove what a run made")
    parser.add_argument("--socket", default=None, help="LXD socket (default: discover)")
    args = parser.parse_args(argv)
    changed = 0
    with API.factory(args.socket) as api:
        for label, task in tasks(api, args):
            # In a dry run, a task after one that "would create" may find its
            # object missing: report that instead of failing the whole run.
            try:
                change = task(args.check)
            except (ValueError, APINotFoundException) as exc:
                if not args.check:
                    raise
                print(f"skipped  {label}: {exc}")
                continue
            changed += change.changed
            print(f"{'changed' if change.changed else 'ok':8} {label}")
            if change.changed:
                print("         " + json.dumps(change.diff, sort_keys=True))
    print(f"{changed} changed{' (check mode: nothing was sent but GETs)' if args.check else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
