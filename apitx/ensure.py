"""Idempotent helpers for configuration management: make LXD look like this.

Each helper takes the :class:`~apitx.API` first and ``check=False`` last, and
returns a :class:`Change`: ``changed``, a redacted ``diff`` of what differs,
and the final ``result``. Run twice, the second run changes nothing and sends
nothing but GETs.

What "present with config X" means (as Ansible's ``lxd_container`` users
expect): the keys given get those values, keys not given are left alone, and
LXD's own ``volatile.*`` keys are never compared or written (giving one is an
error). A value of ``''`` means "unset" (LXD removes a key set to ``''``).
Devices are merged by name: each device given must equal the dict given;
devices not given are left alone. ``profiles`` is compared as a list, order
included (later profiles override earlier ones). ``description=None`` leaves
the description alone.

No lost updates: every change to an existing object is GET, then PATCH with
``If-Match: <ETag>`` carrying only what differs. When another writer changed
the object in between, LXD answers 412; the helper re-reads and re-applies,
up to :data:`ATTEMPTS` times, then raises :class:`ConcurrentUpdateError`.
A write is read back, because LXD 5.0's ETag check is not atomic (two
writers with the same ETag can both be let through). ``Change.retries`` counts
the re-applied writes.

``check=True`` is a dry run: GETs only; ``changed`` and ``diff`` say what a
real run would do, ``result`` is None.

Example: a profile made, then left alone by the second run:

>>> from apitx import API, ensure
>>> api = API.factory()
>>> change = ensure.profile_present(api, c2, config={'limits.cpu': '2'})
>>> change.changed, change.diff
(True, {'before': None, 'after': {'name': '...', 'config': {'limits.cpu': '2'}}})
>>> ensure.profile_present(api, c2, config={'limits.cpu': '2'}).changed
False
>>> ensure.profile_absent(api, c2).changed
True
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, NamedTuple, Optional, Union

from . import _checks
from ._api import API
from ._exceptions import APIException, APINotFoundException, RequestError, RequestTypeError
from ._redact import redact
from ._resource import Resource
from ._result import APIResult

__all__ = [
    "ATTEMPTS", "BACKOFF_SECONDS", "READBACK_DELAY", "STATES", "STATE_ACTIONS",
    "STOP_TIMEOUT", "Change", "ConcurrentUpdateError", "Plan", "file_fingerprint", "plan",
    "instance_present", "instance_absent", "instance_state",
    "image_present", "image_alias_present", "image_absent",
    "profile_present", "profile_absent",
]

#: How many times a helper reads and writes before giving up on a contested object.
ATTEMPTS = 8
#: Upper bound of the random pause before re-reading after a 412, doubled at
#: each attempt: two writers in lockstep fall out of step instead of colliding again.
BACKOFF_SECONDS = 0.01
#: Pause between a write and its read-back. LXD 5.0 can still be writing a
#: simultaneous, stale write that passed the same ETag check; reading back at
#: once missed it (two free-running writer threads, 20 runs: a key lost in 9
#: runs with no read-back, 5 with an immediate one, 0 with this pause).
READBACK_DELAY = 0.05
#: The states :func:`instance_state` can reach, and the actions that lead from
#: a current state to the wanted one (in order).
STATE_ACTIONS = {
    ("Stopped", "Running"): ("start",), ("Frozen", "Running"): ("unfreeze",),
    # A clean stop of a frozen instance: LXD 5.0 thaws it first, Incus 6.0 does
    # not (the halt signal waits in the frozen init, and the stop fails when
    # its timeout ends, leaving it Running): unfreeze first, on both.
    ("Running", "Stopped"): ("stop",), ("Frozen", "Stopped"): ("unfreeze", "stop"),
    ("Running", "Frozen"): ("freeze",), ("Stopped", "Frozen"): ("start", "freeze"),
}
STATES = ("Running", "Stopped", "Frozen")
#: Seconds LXD waits for a clean shutdown before the helper's stop fails.
STOP_TIMEOUT = 30

Diff = Dict[str, Any]
Source = Union[str, Dict[str, Any]]


@dataclass(frozen=True)
class Change:
    """What a helper did (or, with ``check=True``, would do).

    ``diff`` is ``{'before': ..., 'after': ...}`` holding only what differs,
    with secrets redacted; ``{}`` when nothing differs. ``before`` is None for
    an object created, ``after`` None for an object removed. ``result`` is the
    final :class:`~apitx.APIResult` (the write's, waited; or the GET's when
    nothing changed), None in check mode or when nothing was there.
    ``retries`` counts the writes that another writer got in the way of (LXD
    refused them as stale with HTTP 412, or a read-back found them undone) and
    that were re-read and re-applied.
    """

    changed: bool
    diff: Diff = field(default_factory=dict)
    result: Optional[APIResult] = None
    retries: int = 0


class ConcurrentUpdateError(APIException):
    """Another writer got in the way of every one of our writes.

    ``result`` is the last write's answer: usually the refused one (HTTP
    412). Running the helper again is safe.
    """

    def __init__(self, result: APIResult, attempts: int) -> None:
        last = (result.server_message() if result.status_code == 412
                else "our write was undone by a simultaneous one")
        super().__init__(result, status_code=412, error=(
            f"the object changed under us on each of {attempts} attempts ({last}); "
            "run again, or find the other writer"))


# -- reading and writing --------------------------------------------------------


def _read(resource: Resource[APIResult]) -> Optional[APIResult]:
    """The GET of a resource, or None when the server says it does not exist."""
    try:
        return resource.get()
    except APINotFoundException:
        return None


def _etag(result: APIResult) -> str:
    etag = result.response.headers.get("ETag")
    if not etag:
        raise APIException(result, error=(
            "the server sent no ETag: apitx.ensure does not write without one, "
            "since another writer's change could be lost"))
    return str(etag)


def _pause(attempt: int) -> None:
    time.sleep(random.uniform(0, BACKOFF_SECONDS * 2 ** attempt))


def _diff(before: Any, after: Any) -> Diff:
    return {"before": redact(before), "after": redact(after)}


def _create(collection: Resource[APIResult], resource: Resource[APIResult], body: Dict[str, Any],
            check: bool) -> Optional[Change]:
    """Create an object that a GET found missing.

    Returns None when the create failed because another writer created the
    object meanwhile: the caller then re-reads and updates it instead. Any
    other failure raises the server's message.
    """
    diff = _diff(None, body)
    if check:
        return Change(True, diff)
    try:
        return Change(True, diff, collection.post(json=body).wait())
    except APIException:
        if _read(resource) is None:
            raise
        return None


def _converge(collection: Resource[APIResult], resource: Resource[APIResult], wanted: Dict[str, Any],
              create: Optional[Dict[str, Any]], check: bool) -> Change:
    """Make an object have the ``wanted`` fields; create it from ``create`` if missing.

    The read-modify-write loop of every ``*_present`` helper: read, plan,
    write once (:func:`_write_once`), and start again from what the write
    left behind when another writer got in the way. ``create=None`` means a
    missing object is an error.
    """
    retries = 0
    current = _read(resource)
    for attempt in range(ATTEMPTS):
        if current is None:
            if create is None:
                raise RequestError(f"{resource!s} does not exist, and nothing was given to "
                                   "create it from (instance_present: give source=...)")
            change = _create(collection, resource, create, check)
            if change is not None:
                return dataclasses.replace(change, retries=retries)
            retries += 1
            current = resource.get()  # another writer created it meanwhile: update it
        planned = plan(current.metadata, wanted)
        if not planned.patch:
            return Change(False, {}, None if check else current, retries)
        diff = _diff(planned.before, planned.after)
        if check:
            return Change(True, diff, None, retries)
        written = _write_once(resource, planned.patch, _etag(current), wanted, attempt)
        if written.stuck:
            return Change(True, diff, written.answer, retries)
        current = written.current
        retries += 1
    raise ConcurrentUpdateError(written.answer, ATTEMPTS)


class _Written(NamedTuple):
    """One write's outcome: its answer (the waited success, or the 412), the
    object as read afterwards, and whether the write is there to stay."""

    answer: APIResult
    current: Optional[APIResult]
    stuck: bool


def _write_once(resource: Resource[APIResult], patch: Dict[str, Any], etag: str,
                wanted: Dict[str, Any], attempt: int) -> _Written:
    """PATCH what differs with ``If-Match``, then read the object back.

    A 412 (another writer changed it since we read it) backs off and
    re-reads. A write LXD accepted is read back after :data:`READBACK_DELAY`:
    LXD 5.0 checks the ETag and writes in two steps, so two writes sent at
    the same moment can both pass the check and the later one undo the
    earlier (README.md, "No lost updates"); only a read-back that shows what
    we wanted makes the write stick.
    """
    answer = resource.patch(json=patch, headers={"If-Match": etag}, validate=False)
    if answer.status_code == 412:
        _pause(attempt)
        return _Written(answer, _read(resource), False)
    answer = answer.wait()
    time.sleep(READBACK_DELAY)
    current = _read(resource)
    return _Written(answer, current,
                    current is not None and not plan(current.metadata, wanted).patch)


class Plan(NamedTuple):
    """What :func:`plan` found: the PATCH body, and the differing parts
    before and after (for the diff)."""

    patch: Dict[str, Any]
    before: Diff
    after: Diff


def plan(current: Dict[str, Any], wanted: Dict[str, Any]) -> Plan:
    """What to PATCH to make ``current`` have the ``wanted`` fields.

    ``config`` and ``devices`` merge key by key (see the module docstring);
    every other field compares whole; None in ``wanted`` means "leave alone".

    >>> plan({'config': {'a': '1'}}, {'config': {'a': '2'}}).patch
    {'config': {'a': '2'}}
    """
    _checks.mapping(current, "plan(current)")
    _checks.mapping(wanted, "plan(wanted)")
    patch: Dict[str, Any] = {}
    before: Diff = {}
    after: Diff = {}
    for name, value in wanted.items():
        if value is None:
            continue
        have = current.get(name)
        if name in ("config", "devices"):
            have = have or {}
            # In config, '' and a missing key are the same thing to LXD.
            differs = {key: val for key, val in value.items()
                       if have.get(key, "" if name == "config" else None) != val}
            if differs:
                patch[name] = differs
                before[name] = {key: have.get(key) for key in differs}
                after[name] = {key: val if val != "" else None for key, val in differs.items()}
        elif have != value:
            before[name] = have
            patch[name] = after[name] = value
    return Plan(patch, before, after)


def _checked_config(config: Optional[Dict[str, Any]]) -> Optional[Dict[str, str]]:
    """Refuse what LXD would refuse later or what the helper cannot honour."""
    if config is None:
        return None
    for key, value in _checks.mapping(config, "config").items():
        if not isinstance(key, str):
            raise RequestTypeError(f"config key {key!r}: LXD config keys are strings")
        if key.startswith("volatile."):
            raise RequestError(f"config key {key!r}: volatile.* keys are LXD's own state; "
                               "the helpers never set or compare them")
        if not isinstance(value, str):
            raise RequestTypeError(f"config[{key!r}] = {value!r}: LXD config values are "
                                   f"strings, give {str(value).lower()!r}")
    return config


def _checked_devices(devices: Optional[Dict[str, Dict[str, str]]]
                     ) -> Optional[Dict[str, Dict[str, str]]]:
    """Devices are merged by name, so each must be a dict of its own."""
    for name, device in (_checks.optional_mapping(devices, "devices") or {}).items():
        _checks.mapping(device, f"devices[{name!r}]")
    return devices


def _remove(resource: Resource[APIResult], before: Dict[str, Any], check: bool) -> Change:
    diff = _diff(before, None)
    if check:
        return Change(True, diff)
    return Change(True, diff, resource.delete().wait())


# -- instances --------------------------------------------------------------------


def instance_present(api: API, name: str, source: Optional[Source] = None,
                     config: Optional[Dict[str, str]] = None,
                     devices: Optional[Dict[str, Dict[str, str]]] = None,
                     profiles: Optional[List[str]] = None, check: bool = False) -> Change:
    """Make instance ``name`` exist with the given config, devices and profiles.

    ``source`` is used only to create a missing instance: an LXD source dict,
    or a string meaning an image alias. A running instance stays running:
    LXD applies what it can live, and the rest at the next start.

    >>> from apitx import API
    >>> api = API.factory()
    >>> instance_present(api, c2, source='apitx-busybox',
    ...                  config={'limits.memory': '256MB'}, profiles=['default'])
    Change(changed=True, ...)
    >>> instance_present(api, c2, config={'limits.memory': '256MB'}).changed
    False
    """
    config = _checked_config(config)
    wanted: Dict[str, Any] = {"config": config, "devices": _checked_devices(devices),
                              "profiles": profiles}
    create: Optional[Dict[str, Any]] = None
    if source is not None:
        create = {"name": name, "source": ({"type": "image", "alias": source}
                                           if isinstance(source, str) else source)}
        create.update((key, value) for key, value in wanted.items() if value is not None)
    return _converge(api.instances, api.instances[name], wanted, create, check)


def instance_absent(api: API, name: str, check: bool = False) -> Change:
    """Make instance ``name`` not exist, stopping it first (forcibly) if it runs.

    >>> from apitx import API
    >>> api = API.factory()
    >>> api.post('instances', json={'name': c2, 'source': {'type': 'none'}}).wait().ok
    True
    >>> instance_absent(api, c2).changed, instance_absent(api, c2).changed
    (True, False)
    """
    resource = api.instances[name]
    current = _read(resource)
    if current is None:
        return Change(False)
    status = current.metadata.get("status")
    if status != "Stopped" and not check:
        resource.state.put(json={"action": "stop", "force": True}).wait()
    return _remove(resource, {"name": name, "status": status}, check)


def instance_state(api: API, name: str, state: str, check: bool = False) -> Change:
    """Make instance ``name`` ``Running``, ``Stopped`` or ``Frozen``.

    Stopping is a clean shutdown (LXD waits up to :data:`STOP_TIMEOUT`
    seconds); freezing needs the cgroup freezer, and when LXD refuses, its
    message is raised as :class:`~apitx.APIException`. State changes are
    actions, not writes of a stored object, so no ETag is involved: LXD
    itself refuses an action that no longer fits the current state.

    >>> from apitx import API
    >>> api = API.factory()
    >>> instance_state(api, c1, 'Running').changed          # it runs already
    False
    >>> instance_state(api, c1, 'Stopped', check=True).diff  # a dry run
    {'before': {'status': 'Running'}, 'after': {'status': 'Stopped'}}
    """
    wanted = _checks.text(state, "instance_state(state)").capitalize()
    if wanted not in STATES:
        raise RequestError(f"state {state!r}: give one of {', '.join(STATES)}")
    resource = api.instances[name].state
    current = resource.get()
    status = current.metadata.get("status")
    if status == wanted:
        return Change(False, {}, None if check else current)
    actions = STATE_ACTIONS.get((status, wanted))
    if actions is None:
        raise RequestError(f"instance {name!r} is {status!r}: cannot make it {wanted} "
                           "from there; wait until it settles and run again")
    diff = _diff({"status": status}, {"status": wanted})
    if check:
        return Change(True, diff)
    for action in actions:
        body: Dict[str, Any] = {"action": action}
        if action == "stop":
            body["timeout"] = STOP_TIMEOUT
        result = resource.put(json=body).wait()
    return Change(True, diff, result)


# -- images ---------------------------------------------------------------------


def file_fingerprint(path: str) -> str:
    """The sha256 of a file: LXD's fingerprint of a unified image tarball
    (:func:`image_present`'s example checks one against LXD's).

    >>> file_fingerprint('/dev/null')
    'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
    """
    path = _checks.local_path(path, "file_fingerprint(path)")
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise _checks.unreadable(path, "the image file", exc) from exc
    return digest.hexdigest()


def image_present(api: API, path: str, alias: Optional[str] = None,
                  check: bool = False) -> Change:
    """Make the image in the unified tarball ``path`` exist, uploading it only if missing.

    The fingerprint is the tarball's sha256, so an image already there is
    found by one GET and never re-uploaded. With ``alias``, also makes that
    alias point at the image (see :func:`image_alias_present`). Split images
    (metadata and rootfs in two files) are not supported.

    >>> from pathlib import Path
    >>> from apitx import API
    >>> api = API.factory()
    >>> fingerprint = api.get('images/aliases/apitx-busybox').metadata['target']
    >>> tarball = Path(f'/tmp/{c2}.tar.gz')
    >>> tarball.write_bytes(api.get(f'images/{fingerprint}/export').response.content)
    1...
    >>> file_fingerprint(str(tarball)) == fingerprint
    True
    >>> image_present(api, str(tarball)).changed     # there already: not sent
    False
    >>> image_present(api, str(tarball), alias=c2).diff
    {'before': {'alias': None}, 'after': {'alias': {...}}}
    >>> api.delete(f'images/aliases/{c2}').ok
    True
    >>> tarball.unlink()
    """
    fingerprint = file_fingerprint(path)
    image = _read(api.images[fingerprint])
    before: Diff = {}
    after: Diff = {}
    if image is None:
        before["image"], after["image"] = None, {"fingerprint": fingerprint, "file": path}
        if check:
            if alias is not None:
                before["alias"], after["alias"] = None, {"name": alias, "target": fingerprint}
            return Change(True, _diff(before, after))
        image = _upload(api, path, fingerprint)
    retries = 0
    if alias is not None:
        aliased = image_alias_present(api, alias, fingerprint, check=check)
        retries = aliased.retries
        if aliased.changed:
            before["alias"], after["alias"] = aliased.diff["before"], aliased.diff["after"]
    changed = bool(after)
    return Change(changed, _diff(before, after) if changed else {}, None if check else image,
                  retries)


def _upload(api: API, path: str, fingerprint: str) -> APIResult:
    with open(path, "rb") as stream:
        # A file object is streamed by requests, not read into memory.
        done = api.images.post(data=stream, headers={
            "Content-Type": "application/octet-stream"}).wait()
    got = (done.metadata.get("metadata") or {}).get("fingerprint")
    if got != fingerprint:
        raise APIException(done, error=(
            f"LXD stored {path} as image {got}, not {fingerprint} (its sha256): "
            "is it a split image? image_present takes unified tarballs only"))
    return done


def image_alias_present(api: API, alias: str, fingerprint: str,
                        description: Optional[str] = None, check: bool = False) -> Change:
    """Make image alias ``alias`` exist and point at ``fingerprint``.

    ``fingerprint`` may be a unique prefix; the image must exist (a missing
    one raises :class:`~apitx.APINotFoundException`).

    >>> from apitx import API
    >>> api = API.factory()
    >>> fingerprint = api.get('images/aliases/apitx-busybox').metadata['target']
    >>> image_alias_present(api, c2, fingerprint[:12]).diff
    {'before': None, 'after': {'name': '...', 'target': '...', 'description': ''}}
    >>> image_alias_present(api, c2, fingerprint).changed
    False
    >>> api.delete(f'images/aliases/{c2}').ok
    True
    """
    target = api.images[fingerprint].get().metadata["fingerprint"]
    wanted = {"target": target, "description": description}
    create = {"name": alias, "target": target, "description": description or ""}
    return _converge(api.images.aliases, api.images.aliases[alias], wanted, create, check)


def image_absent(api: API, fingerprint_or_alias: str, check: bool = False) -> Change:
    """Make an image not exist, named by alias or by FULL fingerprint.

    An alias is looked up first (as ``lxc`` does); the image it points at is
    deleted, with all its aliases. Fingerprint prefixes are not accepted, so
    a short string can never delete an image by accident.

    >>> from apitx import API
    >>> api = API.factory()
    >>> image_absent(api, c2).changed                           # no such image
    False
    >>> image_absent(api, 'apitx-busybox', check=True).diff     # a dry run
    {'before': {'fingerprint': '...', 'aliases': ['apitx-busybox'...]}, 'after': None}
    """
    alias = _read(api.images.aliases[fingerprint_or_alias])
    fingerprint = alias.metadata["target"] if alias is not None else fingerprint_or_alias
    image = _read(api.images[fingerprint])
    if image is None or image.metadata.get("fingerprint") != fingerprint:
        return Change(False)
    names = [entry["name"] for entry in image.metadata.get("aliases") or []]
    return _remove(api.images[fingerprint], {"fingerprint": fingerprint, "aliases": names}, check)


# -- profiles -------------------------------------------------------------------


def profile_present(api: API, name: str, config: Optional[Dict[str, str]] = None,
                    devices: Optional[Dict[str, Dict[str, str]]] = None,
                    description: Optional[str] = None, check: bool = False) -> Change:
    """Make profile ``name`` exist with the given config, devices and description.

    >>> from apitx import API
    >>> api = API.factory()
    >>> profile_present(api, c2, config={'limits.cpu': '1'}).changed
    True
    >>> profile_present(api, c2, config={'limits.cpu': '2'}).diff
    {'before': {'config': {'limits.cpu': '1'}}, 'after': {'config': {'limits.cpu': '2'}}}
    >>> profile_absent(api, c2).changed
    True
    """
    wanted: Dict[str, Any] = {"config": _checked_config(config),
                              "devices": _checked_devices(devices), "description": description}
    create: Dict[str, Any] = {"name": name}
    create.update((key, value) for key, value in wanted.items() if value is not None)
    return _converge(api.profiles, api.profiles[name], wanted, create, check)


def profile_absent(api: API, name: str, check: bool = False) -> Change:
    """Make profile ``name`` not exist (LXD refuses while instances use it).

    >>> from apitx import API
    >>> api = API.factory()
    >>> profile_absent(api, c2).changed        # there is none
    False
    """
    current = _read(api.profiles[name])
    if current is None:
        return Change(False)
    return _remove(api.profiles[name], {"name": name}, check)
