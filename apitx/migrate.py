"""Move workloads between servers: instances, images, custom volumes, backups.

Each function takes the :class:`~apitx.API` of each server it involves and
returns when the work is done and checked, or raises:

- :class:`~apitx.RequestError` before anything is sent, for what cannot work:
  a bad argument, or a pair of servers and a mode known to fail (each with
  its reason, as measured: docs/migration.md);
- :class:`~apitx.MigrationError` for a failure on the way, naming the side
  that failed (``side``: ``'source'`` or ``'target'``), with both servers'
  own words; whatever the target created is removed first (a target that
  died midway is waited for up to a minute, then named in ``left_behind``).

``mode`` is who carries the data: ``'pull'``
(the target's daemon connects to the source), ``'push'`` (the source's
connects to the target) or ``'relay'`` (apitx connects to both and carries
every byte, in flat memory: for servers that cannot reach each other).
``progress`` is called with :class:`TransferProgress` updates: the servers'
own transfer figures, and apitx's byte counts where apitx carries the bytes.

Measured on LXD 5.0.2 and Incus 6.0.4: instances (stopped, or running and
copied as they are on disk: no live migration), with or without snapshots,
move LXD to LXD, Incus to Incus, LXD to Incus, Incus to LXD (without
snapshots), into, out of and within an LXD cluster, in all three modes.

Example: copy the running instance ``c1`` to a second server as ``c2``
(an HTTPS URL with ``cert=`` works the same as this Unix socket):

>>> from apitx import API, migrate
>>> here, there = API.factory(), API.factory(lxd2)
>>> migrate.copy_instance(here, c1, there, new_name=c2, mode='relay').ok
True
>>> there.get(f'instances/{c2}').metadata['status']
'Stopped'

:func:`move_instance` moves one (within a cluster too, with
``target_member=``), :func:`copy_image` copies an image with its aliases,
:func:`export_instance` and :func:`import_instance` go through a backup
file.
"""

from __future__ import annotations

import time
from typing import Any, Dict, List, Optional
from urllib.parse import quote

from ._api import API
from ._backups import export_instance, import_instance
from ._compat import refuse
from ._exceptions import APINotFoundException, APITXError, MigrationError, RequestError, \
    RequestTypeError
from ._images import copy_image
from ._migration import (MODES, Job, Peer, check_mode, check_name, failed_on, migrate,
                         remove_created, side_failed, wait_reporting)
from ._result import APIResult
from ._transfer import ProgressCallback, ProgressReader, TransferProgress

__all__ = ["MODES", "TransferProgress", "copy_image", "copy_instance", "copy_volume",
           "export_instance", "import_instance", "move_instance"]

#: Instance config keys a copy keeps although they are ``volatile.``: the
#: image it was made from, which lets the target start from its own copy of
#: that image and receive only the differences (as ``lxc copy`` does).
_KEPT_VOLATILE = ("volatile.base_image",)


def copy_instance(source: API, name: str, target: API, *, new_name: Optional[str] = None,
                  mode: str = "pull", snapshots: bool = True,
                  target_member: Optional[str] = None, pool: Optional[str] = None,
                  project: Optional[str] = None, progress: Optional[ProgressCallback] = None,
                  timeout: Optional[float] = None) -> APIResult:
    """Copy instance ``name`` from ``source`` to ``target`` (as ``new_name``);
    return the target's final answer.

    ``snapshots=False`` copies the instance alone; ``target_member`` places
    the copy on that member of a target cluster; ``pool`` puts its root disk
    in that pool of the target; ``project`` is the project on both servers
    (default: each API's own). ``volatile.*`` keys are not copied (the copy
    gets its own MAC addresses and identity), but for the base image. A
    running container is copied as it is on disk, as ``lxc copy
    --stateless`` does. The same server on both sides makes a local copy.

    >>> from apitx import API
    >>> copy_instance(API.factory(), c1, API.factory(lxd2), new_name=c2, mode='push',
    ...               snapshots=False)
    <APIResult GET unix:/var/lib/apitx-pair/lxd2/unix.socket /1.0/operations/.../wait?timeout=30 HTTP/200>
    """
    _check_common(name, new_name, mode, target_member, pool, project, timeout)
    source, target = _in_project(source, project), _in_project(target, project)
    return _Instances(source, name, target, new_name, mode, snapshots, target_member, pool,
                      progress, timeout).copy()


def move_instance(source: API, name: str, target: Optional[API] = None, *,
                  new_name: Optional[str] = None, mode: str = "pull", snapshots: bool = True,
                  target_member: Optional[str] = None, pool: Optional[str] = None,
                  project: Optional[str] = None, progress: Optional[ProgressCallback] = None,
                  timeout: Optional[float] = None) -> APIResult:
    """Move instance ``name`` to ``target`` (default: the same server); return
    the target's final answer.

    Between two servers: a copy that keeps the ``volatile.*`` keys (MAC
    addresses, identity; not across LXD and Incus, whose keys differ), checked
    (the instance and each snapshot are on the target), and only then the
    source deleted; the instance must be stopped. Within a cluster,
    ``target_member`` moves it to that member (the server does it; a running
    instance is stopped and started again there). On one server,
    ``new_name`` alone renames it.

    >>> from apitx import API
    >>> here, there = API.factory(), API.factory(lxd2)
    >>> copy_instance(here, c1, there, new_name=c2, mode='relay').ok     # a stopped copy
    True
    >>> move_instance(there, c2, here, mode='pull').ok                   # and back
    True
    >>> there.get(f'instances/{c2}', validate=False).status_code
    404
    """
    _check_common(name, new_name, mode, target_member, pool, project, timeout)
    source = _in_project(source, project)
    target = source if target is None else _in_project(target, project)
    return _Instances(source, name, target, new_name, mode, snapshots, target_member, pool,
                      progress, timeout).move()


def copy_volume(source: API, pool: str, volume: str, target: API, *,
                target_pool: Optional[str] = None, new_name: Optional[str] = None,
                mode: str = "pull", snapshots: bool = True, project: Optional[str] = None,
                progress: Optional[ProgressCallback] = None,
                timeout: Optional[float] = None) -> APIResult:
    """Copy custom volume ``volume`` of ``pool`` on ``source`` to ``target``
    (into ``target_pool``, default the same name; as ``new_name``); return
    the target's final answer.

    >>> from apitx import API
    >>> here, there = API.factory(), API.factory(lxd2)
    >>> here.post('storage-pools/default/volumes', json={'name': c2, 'type': 'custom'}).ok
    True
    >>> copy_volume(here, 'default', c2, there, mode='relay').ok
    True
    >>> there.get(f'storage-pools/default/volumes/custom/{c2}').metadata['name'] == c2
    True
    >>> for api in (here, there):
    ...     api.delete(f'storage-pools/default/volumes/custom/{c2}').ok
    True
    True
    """
    _check_common(volume, new_name, mode, None, target_pool, project, timeout)
    check_name("pool", pool)
    source, target = _in_project(source, project), _in_project(target, project)
    new = new_name or volume
    into = target_pool or pool
    source_peer, target_peer = Peer.read(source, "source"), Peer.read(target, "target")
    described = f"volume {pool}/{volume}"
    refuse("volume", described, source_peer.server.name, target_peer.server.name, mode)
    if source_peer.same_server(target_peer):
        raise RequestError(f"{described}: source and target are one server; copy it there "
                           "with POST storage-pools/<pool>/volumes/custom "
                           "(source type 'copy'); nothing was sent")
    url = f"storage-pools/{_q(pool)}/volumes/custom/{_q(volume)}"
    found = _get(source_peer, url, described)
    target_url = f"storage-pools/{_q(into)}/volumes/custom"
    _get(target_peer, f"storage-pools/{_q(into)}", f"pool {into}")
    _must_be_free(target_peer, f"{target_url}/{_q(new)}", f"a volume {into}/{new}")
    job = Job(
        what=described, source_url=url,
        source_body={"migration": True, "name": volume, "pool": pool,
                     "volume_only": not snapshots},
        target_url=target_url, target_pool=into,
        target_body={"name": new, "type": "custom", "config": found.get("config") or {},
                     "description": found.get("description") or "",
                     "content_type": found.get("content_type") or "filesystem",
                     "source": {"name": volume, "pool": pool, "volume_only": not snapshots}})
    return migrate(job, source_peer, target_peer, mode, progress=progress, timeout=timeout,
                   remove=lambda: remove_created(target, f"{target_url}/{_q(new)}",
                                                 f"volume {into}/{new}"))


class _Instances:
    """One copy or move of an instance: the checks, the request, the work."""

    def __init__(self, source: API, name: str, target: API, new_name: Optional[str],
                 mode: str, snapshots: bool, member: Optional[str], pool: Optional[str],
                 progress: Optional[ProgressCallback], timeout: Optional[float]) -> None:
        self.name, self.new = name, new_name or name
        self.mode, self.snapshots, self.member, self.pool = mode, snapshots, member, pool
        self.progress, self.timeout = progress, timeout
        self.source_api, self.target_api = source, target
        self.source = Peer.read(source, "source")
        self.target = self.source if target is source else Peer.read(target, "target")
        self.url = f"instances/{_q(name)}"
        self.described = f"instance {name}"
        self.instance: Dict[str, Any] = _get(self.source, self.url, self.described)

    # -- copy -----------------------------------------------------------------------

    def copy(self) -> APIResult:
        if self.source.same_server(self.target):
            return self._local_copy()
        return self._between_servers(keep_volatile=False)

    def _local_copy(self) -> APIResult:
        """One server: it copies the instance itself (any member of a cluster)."""
        if self.new == self.name:
            raise RequestError(f"{self.described}: source and target are one server: give "
                               "new_name= for the copy; nothing was sent")
        self._target_checks()
        body = self._body(keep_volatile=False)
        body["source"] = {"type": "copy", "source": self.name,
                          "instance_only": not self.snapshots}
        return self._one_operation(self.target, "instances", body, self._member_params(),
                                   f"copying {self.described} to {self.new}")

    def _between_servers(self, *, keep_volatile: bool) -> APIResult:
        self._refusals()
        self._target_checks()
        body = self._body(keep_volatile)
        body["source"] = {"instance_only": not self.snapshots,
                          "container_only": not self.snapshots}  # the older servers' name
        base = (self.instance.get("config") or {}).get("volatile.base_image")
        if base:
            body["source"]["base-image"] = base
        job = Job(what=self.described, source_url=self.url,
                  source_body={"migration": True, "live": False,
                               "instance_only": not self.snapshots,
                               "container_only": not self.snapshots},
                  target_url="instances", target_body=body,
                  target_params=self._member_params(), target_pool=self._target_pool())
        return migrate(job, self.source, self.target, self.mode, progress=self.progress,
                       timeout=self.timeout, remove=self._remove_copy)

    # -- move -----------------------------------------------------------------------

    def move(self) -> APIResult:
        if self.source.same_server(self.target):
            return self._move_within()
        if self.instance.get("status") != "Stopped":
            raise RequestError(
                f"{self.described} is {str(self.instance.get('status')).lower()}: stop it "
                "before moving it to another server (these servers cannot migrate a running "
                "instance live, and a copy of a running one would miss what it writes "
                "meanwhile); nothing was sent")
        done = self._between_servers(
            keep_volatile=self.source.server.name == self.target.server.name)
        self._verify_copy()
        try:
            self.source_api.delete(self.url).wait(self.timeout)
        except APITXError as exc:
            raise MigrationError(
                f"moved {self.described} to {self.target} (checked: it and its snapshots are "
                f"there), but deleting it on {self.source} failed: {exc}; both hold it now: "
                "delete the source's yourself once you have checked", side="source",
                source_error=str(exc)) from exc
        return done

    def _move_within(self) -> APIResult:
        """One server: a cluster member change, or a rename."""
        if self.member is not None:
            if not self.source.clustered:
                raise RequestError(f"target_member={self.member!r}: {self.source} is not a "
                                   "cluster; nothing was sent")
            if self.pool is not None:
                raise RequestError("pool= cannot go with target_member= (the server moves "
                                   "the instance as it is); nothing was sent")
            if self.new != self.name:
                self._must_be_free(self.new)
            return self._one_operation(self.source, self.url,
                                       {"name": self.new, "migration": True, "live": False},
                                       {"target": self.member},
                                       f"moving {self.described} to member {self.member}")
        if self.pool is not None:
            raise RequestError(f"pool={self.pool!r}: moving {self.described} to another pool of "
                               "the same server is not supported here; nothing was sent")
        if self.new == self.name:
            raise RequestError(f"{self.described}: source and target are one server: give "
                               "new_name= (a rename) or target_member= (a cluster move); "
                               "nothing was sent")
        self._must_be_free(self.new)
        return self._one_operation(self.source, self.url, {"name": self.new}, {},
                                   f"renaming {self.described} to {self.new}")

    def _verify_copy(self) -> None:
        """The copy is on the target, with each snapshot: or the source stays."""
        copy = _get(self.target, f"instances/{_q(self.new)}", f"the copy {self.new}")
        missing: List[str] = []
        if self.snapshots:
            ours = self._snapshot_names(self.source, self.url)
            theirs = self._snapshot_names(self.target, f"instances/{_q(self.new)}")
            missing = sorted(set(ours) - set(theirs))
        if missing or copy.get("type") != self.instance.get("type"):
            what = f"snapshots {', '.join(missing)}" if missing else "the same type"
            raise MigrationError(
                f"{self.target} reported the copy of {self.described} done, but it lacks "
                f"{what}: the source was kept (nothing was deleted)", side="target",
                target_error=f"missing {what}")

    # -- checks and requests --------------------------------------------------------

    def _refusals(self) -> None:
        has_snapshots = bool(self.instance.get("snapshots")) or bool(
            self._snapshot_names(self.source, self.url))
        refuse("instance", self.described, self.source.server.name, self.target.server.name,
               self.mode, snapshots=self.snapshots and has_snapshots)

    def _target_checks(self) -> None:
        """What the target must have before anything is sent: a free name,
        the instance's profiles, the pool."""
        self._must_be_free(self.new)
        wanted = list(self.instance.get("profiles") or ())
        try:
            there = {url.rsplit("/", 1)[-1] for url in
                     self.target.client.request("GET", "profiles").metadata or ()}
        except APITXError as exc:
            raise side_failed("target", self.target.client, exc, "listing its profiles") from exc
        missing = [profile for profile in wanted if profile not in there]
        if missing:
            raise MigrationError(
                f"{self.target} lacks profile{'s' if len(missing) > 1 else ''} "
                f"{', '.join(missing)}, which {self.described} uses: create "
                f"{'them' if len(missing) > 1 else 'it'} there first; nothing was sent",
                side="target", target_error=f"missing profiles: {', '.join(missing)}")
        if self.pool is not None:
            _get(self.target, f"storage-pools/{_q(self.pool)}", f"pool {self.pool}")

    def _must_be_free(self, name: str) -> None:
        _must_be_free(self.target, f"instances/{_q(name)}", f"an instance {name}")

    def _body(self, keep_volatile: bool) -> Dict[str, Any]:
        """The create request's own fields (``source`` is added by the mode)."""
        instance = self.instance
        config = {key: value for key, value in (instance.get("config") or {}).items()
                  if key != "volatile.last_state.power" and
                  (keep_volatile or not key.startswith("volatile.") or key in _KEPT_VOLATILE)}
        devices = {name: dict(device) for name, device in (instance.get("devices") or {}).items()}
        if self.pool is not None:
            root = next((name for name, device in devices.items()
                         if device.get("type") == "disk" and device.get("path") == "/"), "root")
            devices[root] = {**devices.get(root, {"type": "disk", "path": "/"}),
                             "pool": self.pool}
        return {"name": self.new, "type": instance.get("type") or "container",
                "architecture": instance.get("architecture"), "config": config,
                "devices": devices, "profiles": list(instance.get("profiles") or ()),
                "ephemeral": bool(instance.get("ephemeral")),
                "description": instance.get("description") or ""}

    def _target_pool(self) -> Optional[str]:
        """The pool the copy's root disk lands in: ``pool=``, the instance's
        own root disk, or its profiles' on the target (the last one wins)."""
        if self.pool is not None:
            return self.pool
        for device in (self.instance.get("devices") or {}).values():
            if device.get("type") == "disk" and device.get("path") == "/" and device.get("pool"):
                return str(device["pool"])
        found = None
        for profile in self.instance.get("profiles") or ():
            answer = self.target.client.request("GET", f"profiles/{_q(profile)}",
                                                validate=False)
            for device in ((answer.metadata or {}).get("devices") or {}).values() \
                    if answer.ok else ():
                if device.get("type") == "disk" and device.get("path") == "/":
                    found = device.get("pool") or found
        return found

    def _member_params(self) -> Dict[str, str]:
        if self.member is None:
            return {}
        if not self.target.clustered:
            raise RequestError(f"target_member={self.member!r}: {self.target} is not a "
                               "cluster; nothing was sent")
        return {"target": self.member}

    def _snapshot_names(self, peer: Peer, url: str) -> List[str]:
        try:
            listed = peer.client.request("GET", f"{url}/snapshots").metadata or ()
        except APITXError as exc:
            raise side_failed(peer.role, peer.client, exc, "listing snapshots") from exc
        return [str(entry).rsplit("/", 1)[-1] for entry in listed]

    def _one_operation(self, peer: Peer, url: str, body: Dict[str, Any],
                       params: Dict[str, str], doing: str) -> APIResult:
        """A copy or move the server does alone: one request, its operation
        waited with progress, a failure named as that server's."""
        try:
            return wait_reporting(
                peer.client.request("POST", url, json=body, params=params or None),
                ProgressReader(time.monotonic()), peer.role, self.progress, self.timeout)
        except APITXError as exc:
            raise failed_on(peer.role, f"{doing} failed on {peer}: {exc}", str(exc)) from exc

    def _remove_copy(self) -> Optional[str]:
        return remove_created(self.target.client, f"instances/{_q(self.new)}",
                              f"instance {self.new}")


# -- shared checks ---------------------------------------------------------------------

def _check_common(name: str, new_name: Optional[str], mode: str, member: Optional[str],
                  pool: Optional[str], project: Optional[str],
                  timeout: Optional[float]) -> None:
    """The caller's mistakes, before anything is sent."""
    check_name("name", name)
    for label, value in (("new_name", new_name), ("target_member", member), ("pool", pool),
                         ("project", project)):
        if value is not None:
            check_name(label, value)
    check_mode(mode)
    if timeout is not None and (isinstance(timeout, bool) or
                                not isinstance(timeout, (int, float)) or timeout <= 0):
        raise RequestTypeError(f"timeout={timeout!r}: give seconds (> 0), or None for no "
                               "limit; nothing was sent")


def _in_project(api: API, project: Optional[str]) -> API:
    if not isinstance(api, API):
        raise RequestTypeError(f"{api!r}: give an apitx.API for each server; nothing was sent")
    return api if project is None else api.using(project=project)


def _get(peer: Peer, url: str, described: str) -> Dict[str, Any]:
    """The object at ``url`` on ``peer``, or a :class:`MigrationError` naming
    that side (a missing object, an unreachable server)."""
    try:
        found = peer.client.request("GET", url).metadata
    except APINotFoundException as exc:
        raise failed_on(peer.role, f"{peer} has no {described} ({exc.error}); nothing was sent",
                        exc.error) from exc
    except APITXError as exc:
        raise side_failed(peer.role, peer.client, exc, f"reading {described}") from exc
    return found if isinstance(found, dict) else {}


def _must_be_free(peer: Peer, url: str, described: str) -> None:
    try:
        taken = peer.client.request("GET", url, validate=False).status_code != 404
    except APITXError as exc:
        raise side_failed(peer.role, peer.client, exc, f"looking for {described}") from exc
    if taken:
        raise failed_on(peer.role, f"{peer} already has {described}: give another name "
                        "(new_name=) or delete that one first; nothing was sent",
                        f"{described} exists")


def _q(segment: str) -> str:
    return quote(segment, safe="")

