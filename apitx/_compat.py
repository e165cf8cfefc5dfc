"""What moving workloads between LXD and Incus servers cannot do, and why.

Measured on this project's servers, LXD 5.0.2 and Incus 6.0.4, in each
direction and mode (docs/migration.md has the whole table). Everything not
listed here worked: instances (stopped or running, stateless), with or
without snapshots, LXD to LXD, Incus to Incus, LXD to Incus, and into, out
of and within an LXD cluster, in pull, push and relay mode; images and
custom volumes likewise, but for the rows below; backups of either family
imported by either, but for the last row. Each row is refused before
anything is sent, with its reason, instead of failing halfway (or, for one,
crashing the target daemon).

>>> print(refusal('instance', 'incus', 'lxd', 'relay', snapshots=True))
LXD refuses the snapshots of an Incus instance: their config carries volatile.uuid.generation, ...
"""

from __future__ import annotations

from typing import Any, Iterable, Optional, Set, Tuple

from ._exceptions import RequestError

#: (what, source family, target family, modes, only with snapshots, why)
_REFUSED: Tuple[Tuple[str, str, str, Tuple[str, ...], bool, str], ...] = (
    ("instance", "incus", "lxd", ("pull", "push", "relay"), True,
     "LXD refuses the snapshots of an Incus instance: their config carries "
     "volatile.uuid.generation, a key LXD does not know (LXD 5.0.2 answers 'Unknown "
     "configuration key: volatile.uuid.generation' from Incus 6.0.4); copy it with "
     "snapshots=False"),
    ("volume", "lxd", "incus", ("pull", "push", "relay"), False,
     "Incus crashes receiving a custom volume from LXD: LXD's migration header carries no "
     "volume size for a filesystem volume, and Incus reads it without checking (Incus "
     "6.0.4's daemon exits with a nil pointer dereference, in every mode, measured with LXD "
     "5.0.2)"),
    ("image", "lxd", "incus", ("push",), False,
     "in push mode the source sends the target's one-time secret in its own family's header "
     "(X-LXD-secret), which Incus does not read: it answers 'not authorized'; use pull or "
     "relay"),
    ("image", "incus", "lxd", ("push",), False,
     "in push mode the source sends the target's one-time secret in its own family's header "
     "(X-Incus-secret), which LXD does not read: it answers 'not authorized'; use pull or "
     "relay"),
)

#: Instance config keys LXD does not know and refuses in a backup or a
#: snapshot: Incus writes them (Incus 6.0.4; LXD 5.0.2 refuses them).
INCUS_ONLY_KEYS = ("volatile.uuid.generation",)


def refusal(what: str, source: str, target: str, mode: str, *,
            snapshots: bool = False) -> Optional[str]:
    """Why moving ``what`` from a ``source`` family server to a ``target``
    one in ``mode`` cannot work, or None when it can.

    >>> refusal('image', 'lxd', 'incus', 'pull') is None
    True
    """
    for kind, source_family, target_family, modes, needs_snapshots, why in _REFUSED:
        if (kind, source_family, target_family) == (what, source, target) and mode in modes \
                and (snapshots or not needs_snapshots):
            return why
    return None


def refuse(what: str, described: str, source: str, target: str, mode: str, *,
           snapshots: bool = False) -> None:
    """Raise :class:`RequestError` when :func:`refusal` has a reason.

    >>> refuse('volume', 'volume default/v1', 'lxd', 'incus', 'pull')
    Traceback (most recent call last):
    ...
    apitx.RequestError: cannot pull volume default/v1 from lxd to incus: Incus crashes receiving a
    custom volume from LXD: ...; nothing was sent
    """
    why = refusal(what, source, target, mode, snapshots=snapshots)
    if why is not None:
        raise RequestError(f"cannot {mode} {described} from {source} to {target}: {why}; "
                           "nothing was sent")


def incus_only_keys(configs: Iterable[Any]) -> Tuple[str, ...]:
    """The keys of :data:`INCUS_ONLY_KEYS` set in any of these config dicts.

    >>> incus_only_keys([{'volatile.uuid.generation': 'x'}])
    ('volatile.uuid.generation',)
    """
    found: Set[str] = set()
    for config in configs:
        if isinstance(config, dict):
            found.update(key for key in INCUS_ONLY_KEYS if key in config)
    return tuple(sorted(found))
