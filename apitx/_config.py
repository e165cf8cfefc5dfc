"""Configuration values: timeouts and environment switches.

Like urllib3's ``Timeout``, a timeout is a small immutable value object, so it
can be shared, compared and printed, and it checks its numbers once when it is
made instead of failing deep inside a request.

Example::

    api = API.factory(timeout=Timeout(connect=2, read=120))
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Optional, Tuple, Union

#: Words that turn a switch such as ``DEBUG`` off. lxdapi treated ``DEBUG=0``
#: as on, because any non-empty string is true in Python.
FALSE_WORDS = frozenset({"", "0", "false", "no", "off"})


def env_flag(name: str) -> bool:
    """Read a boolean switch from the environment.

    Unset, ``''``, ``0``, ``false``, ``no`` and ``off`` are off (any case,
    surrounding spaces ignored); ``1``, ``true``, ``yes``, ``on`` and any other
    word are on. ``DEBUG`` is shared with other programs, which use values
    such as ``2`` or ``verbose``: refusing those would break them, and
    reading them as "on" is what their owners mean.

    >>> os.environ['APITX_EXAMPLE'] = 'off'; env_flag('APITX_EXAMPLE')
    False
    """
    return os.environ.get(name, "").strip().lower() not in FALSE_WORDS


Seconds = Optional[float]


@dataclass(frozen=True)
class Timeout:
    """How long to wait for a connection and for each read, in seconds.

    ``None`` means no limit. The defaults are finite on purpose: a stuck
    daemon must not hang the caller forever (lxdapi had no timeout at all).

    - ``connect`` (default 5 s): a local socket connects in microseconds and a
      LAN host in milliseconds; 5 s tolerates a loaded machine.
    - ``read`` (default 60 s): the longest LXD takes to answer a synchronous
      request here is well under a second; long work runs as operations,
      which :meth:`APIResult.wait` polls with its own, longer read timeout.

    >>> Timeout(read=120).read
    120
    """

    connect: Seconds = 5.0
    read: Seconds = 60.0

    def __post_init__(self) -> None:
        for name in ("connect", "read"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value) or value <= 0:
                raise ValueError(
                    f"Timeout({name}={value!r}): give a positive number of seconds, "
                    "or None for no limit")

    @classmethod
    def coerce(cls, value: TimeoutLike) -> Timeout:
        """Accept what requests accepts: a number, ``(connect, read)``, None, or a Timeout."""
        if isinstance(value, Timeout):
            return value
        if value is None or isinstance(value, (int, float)) and not isinstance(value, bool):
            return cls(connect=value, read=value)
        if isinstance(value, tuple) and len(value) == 2:
            return cls(connect=value[0], read=value[1])
        raise TypeError(
            f"timeout={value!r}: give seconds as a number, a (connect, read) tuple, "
            "an apitx.Timeout, or None for no limit")

    def with_read(self, read: Seconds) -> Timeout:
        """The same connect timeout with another read timeout."""
        return Timeout(connect=self.connect, read=read)

    def as_requests(self) -> Tuple[Seconds, Seconds]:
        """The ``(connect, read)`` tuple that ``requests`` takes."""
        return (self.connect, self.read)


TimeoutLike = Union[Timeout, float, int, Tuple[Seconds, Seconds], None]

DEFAULT_TIMEOUT = Timeout()
