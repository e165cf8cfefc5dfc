"""What the migration tests make and how they check it: instances holding
a file of random bytes (checked by sha256, read back through the file API),
deleted at the end whatever happens; the servers of ``pair.py``, one API
each.

Shared by the library's tests (tests/test_migrate.py) and the command's
(tests/test_cli_migrate.py): a pytest plugin (``pytest_plugins`` in
conftest.py) for the fixtures ``apis`` and ``made``, plain functions for
the rest, imported by name.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

import apitx
from pair import servers
from sandbox import remove_instance

IMAGE = "apitx-busybox"
DATA = "/root/data.bin"


class Made:
    """Everything a test made, deleted at the end whatever happened."""

    def __init__(self, apis: Dict[str, apitx.API]) -> None:
        self.apis = apis
        self.things: List[Tuple[str, str, str]] = []

    def name(self, *servers_: str, kind: str = "instance") -> str:
        """A fresh name, to be deleted on each server given."""
        name = f"apitx-mig-{uuid.uuid4().hex[:8]}"
        self.things.extend((kind, server, name) for server in servers_)
        return name

    def close(self) -> None:
        """Delete each thing, every one tried even when one fails (a daemon
        that died meanwhile); then say what could not be deleted."""
        failures = []
        for kind, server, name in reversed(self.things):
            api = apitx.API.factory(self.apis[server].endpoint)  # a fresh pool: daemons restart
            try:
                self._remove(api, kind, name)
            except apitx.APITXError as exc:
                failures.append(f"{kind} {name} on {server}: {exc}")
            finally:
                api.close()
        assert not failures, "left behind:\n" + "\n".join(failures)

    @staticmethod
    def _remove(api: apitx.API, kind: str, name: str) -> None:
        if kind == "instance":
            remove_instance(api, name)
        elif kind == "volume":
            for url in (f"storage-pools/default/volumes/custom/{name}/snapshots/vs0",
                        f"storage-pools/default/volumes/custom/{name}"):
                answer = api.delete(url, validate=False)
                if answer.status_code == 202:
                    answer.wait(60)
        elif kind == "image":
            alias = api.get(f"images/aliases/{name}", validate=False)
            if alias.ok:
                api.delete(f"images/{alias.metadata['target']}").wait(60)


@pytest.fixture(scope="module")
def apis() -> Iterator[Dict[str, apitx.API]]:
    every = servers()
    yield every
    for api in every.values():
        api.close()


@pytest.fixture
def made(apis: Dict[str, apitx.API]) -> Iterator[Made]:
    things = Made(apis)
    yield things
    things.close()


class Hasher:
    """A file object that only hashes what is written to it."""

    def __init__(self) -> None:
        self.sha = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        return len(data)


def sha256_in(api: apitx.API, name: str, path: str = DATA) -> str:
    """The sha256 of a file inside an instance, read through the file API."""
    hasher = Hasher()
    api.files(name).pull(path, hasher)
    return hasher.sha.hexdigest()


def sha256_inside(api: apitx.API, name: str, *, write: int = 0) -> str:
    """Start the instance and have ``sha256sum`` read the data file in it
    (what a user of the instance sees), after writing ``write`` random bytes
    to it there when asked."""
    api.put(f"instances/{name}/state", json={"action": "start"}).wait(60)
    if write:
        api.exec(name, ["sh", "-c", f"head -c {write} /dev/urandom > {DATA}"]).check()
    return api.exec(name, ["sha256sum", DATA]).check().stdout.decode().split()[0]


def random_file(path: str, megabytes: float) -> str:
    """Write ``megabytes`` of random bytes to ``path``; return their sha256."""
    sha = hashlib.sha256()
    left = int(megabytes * (1 << 20))
    with open(path, "wb") as out:
        while left:
            piece = os.urandom(min(left, 1 << 20))
            sha.update(piece)
            out.write(piece)
            left -= len(piece)
    return sha.hexdigest()


def workload(api: apitx.API, name: str, tmp_path: Any, *, megabytes: float = 2,
             snapshot: bool = True, config: Optional[Dict[str, str]] = None) -> str:
    """A stopped busybox instance holding a file of random bytes (and a
    snapshot of it); returns the file's sha256."""
    api.post("instances", json={"name": name, "config": config or {},
                                "source": {"type": "image", "alias": IMAGE}}).wait(120)
    local = str(tmp_path / f"{name}.bin")
    digest = random_file(local, megabytes)
    with open(local, "rb") as data:
        api.files(name).push(DATA, data)
    os.unlink(local)
    if snapshot:
        api.post(f"instances/{name}/snapshots", json={"name": "snap0"}).wait(60)
    return digest


def snapshots(api: apitx.API, name: str) -> List[str]:
    return [url.rsplit("/", 1)[-1] for url in api.get(f"instances/{name}/snapshots").metadata]


def absent(api: apitx.API, url: str) -> bool:
    return api.get(url, validate=False).status_code == 404


def running_operations(api: apitx.API, name: str) -> List[Dict[str, Any]]:
    """The server's running operations that involve instance ``name``, whole."""
    listed = api.get("operations", params={"recursion": 1}).metadata or {}
    return [op for op in listed.get("running") or ()
            if any(name in url for urls in (op.get("resources") or {}).values()
                   for url in urls or ())]


def running_migrations(api: apitx.API, name: str) -> List[str]:
    """The ids of the server's running operations that involve instance ``name``."""
    return [op["id"] for op in running_operations(api, name)]
