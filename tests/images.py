"""Image tarballs of our own, for tests and the converge example.

Each one is the sandbox's busybox image (exported from LXD, so instances
made from it really start) with its metadata.yaml rewritten to carry a
unique description: a different file, hence a different fingerprint, so
deleting it can never touch the shared ``apitx-busybox`` image.

As a script: ``python3 tests/images.py OUT.tar.gz [DESCRIPTION]``.
"""

from __future__ import annotations

import io
import platform
import sys
import tarfile
import time
import uuid

import apitx

SANDBOX_IMAGE = "apitx-busybox"


def export_sandbox_image(api: apitx.API) -> bytes:
    """The unified tarball of the sandbox image, as LXD exports it."""
    fingerprint = api.images.aliases[SANDBOX_IMAGE].get().metadata["target"]
    return api.images[fingerprint].export.get().response.content


def make_tarball(exported: bytes, path: str, description: str) -> str:
    """Write a copy of ``exported`` with a new metadata.yaml to ``path``."""
    metadata = (f"architecture: {platform.machine()}\ncreation_date: {int(time.time())}\n"
                f"properties:\n  description: {description}\n  os: busybox\n"
                f"  release: static\n").encode()
    with tarfile.open(fileobj=io.BytesIO(exported), mode="r:*") as source, \
            tarfile.open(path, "w:gz") as target:
        for member in source:
            if member.name.lstrip("./") == "metadata.yaml":
                member.size = len(metadata)
                target.addfile(member, io.BytesIO(metadata))
            else:
                target.addfile(member, source.extractfile(member) if member.isfile() else None)
    return path


if __name__ == "__main__":
    with apitx.API.factory() as main_api:
        name = sys.argv[2] if len(sys.argv) > 2 else f"apitx image {uuid.uuid4().hex[:8]}"
        print(make_tarball(export_sandbox_image(main_api), sys.argv[1], name))
