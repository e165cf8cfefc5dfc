"""Configuration values: timeouts, trace settings and environment switches.

Every setting is a small immutable value object, so it can be shared,
compared and printed, and it checks its values once, when it is made, instead
of failing deep inside a request (or, worse, inside the error handling of a
failed one). The environment is read in one place, :meth:`TraceSettings.from_env`,
when an :class:`~apitx.API` is made; nothing reads it afterwards.

>>> from apitx import API, Limits, Timeout, TraceSettings
>>> api = API.factory(timeout=Timeout(connect=2, read=120), limits=Limits(max_connections=16),
...                   trace=TraceSettings(enabled=False, format='json'))
>>> api.timeout
Timeout(connect=2, read=120, total=300.0)
>>> Timeout(connect=-1)
Traceback (most recent call last):
...
apitx.SettingsError: Timeout(connect=-1): give a positive number of seconds, or None for no limit
"""

from __future__ import annotations

import math
import os
from typing import Mapping, Optional, Tuple, Union

from ._exceptions import SettingsError, SettingsTypeError
from ._value import Value

#: Words that turn a switch such as ``DEBUG`` off: any non-empty string being
#: true in Python must not make ``DEBUG=0`` mean "on".
FALSE_WORDS = frozenset({"", "0", "false", "no", "off"})


def env_flag(name: str, environ: Optional[Mapping[str, str]] = None) -> bool:
    """Read a boolean switch from the environment.

    Unset, ``''``, ``0``, ``false``, ``no`` and ``off`` are off (any case,
    surrounding spaces ignored); ``1``, ``true``, ``yes``, ``on`` and any other
    word are on. ``DEBUG`` is shared with other programs, which use values
    such as ``2`` or ``verbose``: refusing those would break them, and
    reading them as "on" is what their owners mean.

    >>> os.environ['APITX_EXAMPLE'] = 'off'; env_flag('APITX_EXAMPLE')
    False
    """
    return (os.environ if environ is None else environ).get(name, "").strip().lower() \
        not in FALSE_WORDS


Seconds = Optional[float]

#: The shortest default total deadline of a request: five minutes, enough for
#: a large answer on a slow link, short enough that a dribbling server cannot
#: hold a caller indefinitely.
MIN_TOTAL = 300.0


class Timeout(Value):
    """How long to wait for a connection and for each read, in seconds.

    ``None`` means no limit. The defaults are finite on purpose: a stuck
    daemon must not hang the caller forever.

    - ``connect`` (default 5 s): a local socket connects in microseconds and a
      LAN host in milliseconds; 5 s tolerates a loaded machine.
    - ``read`` (default 60 s): the longest LXD takes to answer a synchronous
      request here is well under a second; long work runs as operations,
      which :meth:`APIResult.wait` polls with its own, longer read timeout.
    - ``total``: the whole request, from connecting to the last byte read
      (``iter_content()`` of a streamed body included). A read timeout
      restarts with every byte, so only this bounds a server that dribbles
      its answer. Default (None): 300 seconds or ``connect +
      read``, whichever is longer; no limit when either of those has none.
      ``math.inf`` means no limit.

    >>> Timeout(read=120).read, Timeout(read=400).total
    (120, 405.0)
    """

    connect: Seconds
    read: Seconds
    total: Seconds

    def __init__(self, connect: Seconds = 5.0, read: Seconds = 60.0,
                 total: Seconds = None) -> None:
        for name, value in (("connect", connect), ("read", read), ("total", total)):
            if value is None or (name == "total" and value == math.inf):
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value) or value <= 0:
                raise SettingsError(
                    f"Timeout({name}={value!r}): give a positive number of seconds, "
                    "or None for " + ("the default" if name == "total" else "no limit"))
        if total is None and connect is not None and read is not None:
            total = max(MIN_TOTAL, float(connect + read))
        self._set(connect=connect, read=read, total=total)

    def deadline(self, start: float) -> Optional[float]:
        """When a request begun at ``start`` (``time.monotonic()``) must end, or None."""
        return None if self.total is None or self.total == math.inf else start + self.total

    @classmethod
    def coerce(cls, value: TimeoutLike) -> Timeout:
        """Accept what requests accepts: a number, ``(connect, read)``, None, or a Timeout."""
        if isinstance(value, Timeout):
            return value
        if value is None or isinstance(value, (int, float)) and not isinstance(value, bool):
            return cls(connect=value, read=value)
        if isinstance(value, tuple) and len(value) == 2:
            return cls(connect=value[0], read=value[1])
        raise SettingsTypeError(
            f"timeout={value!r}: give seconds as a number, a (connect, read) tuple, "
            "an apitx.Timeout, or None for no limit")

    def with_read(self, read: Seconds) -> Timeout:
        """The same connect timeout with another read timeout (and the total
        that follows from them)."""
        return Timeout(connect=self.connect, read=read)

    def as_requests(self) -> Tuple[Seconds, Seconds]:
        """The ``(connect, read)`` tuple that ``requests`` takes."""
        return (self.connect, self.read)


TimeoutLike = Union[Timeout, float, int, Tuple[Seconds, Seconds], None]


#: Connections kept open for reuse, per endpoint, unless told otherwise: more
#: than the threads (or tasks) most programs run against one server.
DEFAULT_KEEPALIVE = 64


class Limits(Value):
    """How many connections an API keeps and opens, per endpoint.

    - ``max_keepalive_connections`` (default 64): connections kept open for
      reuse. Past it, a request that finds none free opens one more, which
      is closed after its answer (urllib3 logs "Connection pool is full"):
      correct, but each costs a connect. urllib3's own default, 10, made
      one API shared by 50 threads open a dozen new sockets every 50 GETs.
    - ``max_connections`` (default None: no cap): the most connections open
      at once. A request that finds them all busy waits for one, within its
      timeout (``Timeout.total``), then raises :class:`~apitx.APITimeoutError`
      having sent nothing. Every connection under the cap is kept for reuse.

    >>> Limits(max_connections=8).pool_size
    8
    """

    max_connections: Optional[int]
    max_keepalive_connections: int

    def __init__(self, max_connections: Optional[int] = None,
                 max_keepalive_connections: int = DEFAULT_KEEPALIVE) -> None:
        for name, value in (("max_connections", max_connections),
                            ("max_keepalive_connections", max_keepalive_connections)):
            if value is None and name == "max_connections":
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise SettingsTypeError(f"Limits({name}={value!r}): give a whole number of "
                                        "connections" + (", or None for no cap"
                                                         if name == "max_connections" else ""))
            if value < 1:
                raise SettingsError(f"Limits({name}={value!r}): give at least 1")
        self._set(max_connections=max_connections,
                  max_keepalive_connections=max_keepalive_connections)

    @property
    def pool_size(self) -> int:
        """Connections a pool keeps: the cap when there is one, else the keep-alive count."""
        return self.max_connections if self.max_connections is not None \
            else self.max_keepalive_connections

    @classmethod
    def coerce(cls, value: Union[Limits, None]) -> Limits:
        """``limits=`` as the API takes it: a Limits, or None for the defaults."""
        if value is None:
            return cls()
        if not isinstance(value, cls):
            raise SettingsTypeError(f"limits={value!r}: give an apitx.Limits, such as "
                                    "Limits(max_connections=16), or None for the defaults")
        return value

DEFAULT_TIMEOUT = Timeout()

#: Bytes of a body a rendering shows before cutting it.
DEFAULT_MAX_BODY = 64 * 1024


class RenderOptions(Value):
    """How transactions are shown to people: secrets redacted or not
    (``unsafe``), and how many bytes of a body to show (``max_body``).

    >>> RenderOptions(max_body=1024).unsafe
    False
    """

    unsafe: bool
    max_body: int

    def __init__(self, unsafe: bool = False, max_body: int = DEFAULT_MAX_BODY) -> None:
        if isinstance(max_body, bool) or not isinstance(max_body, int) or max_body <= 0:
            raise SettingsError(f"max_body={max_body!r}: give a positive number of "
                                f"bytes (default {DEFAULT_MAX_BODY})")
        self._set(unsafe=unsafe, max_body=max_body)


#: What a rendering shows unless told otherwise (a value: one serves all).
DEFAULT_RENDER = RenderOptions()


#: The trace formats: a readable block, one JSON object a line, a curl line.
TRACE_FORMATS = ("text", "json", "curl")


class TraceSettings(Value):
    """Whether and how an API traces its transactions, and how it renders them.

    ``enabled`` turns tracing on; ``format`` is ``'text'``, ``'json'`` or ``'curl'``;
    ``file`` appends the trace to that file instead of stderr; ``render``
    applies to every rendering of the API's results (traces, summaries,
    ``curl()``, exception texts), traced or not.

    >>> TraceSettings(enabled=True, format='json').format
    'json'
    """

    enabled: bool
    format: str
    file: str
    render: RenderOptions

    def __init__(self, enabled: bool = False, format: str = "text", file: str = "",
                 render: RenderOptions = DEFAULT_RENDER) -> None:
        if format not in TRACE_FORMATS:
            raise SettingsError(f"trace format {format!r} is not one of "
                                f"{', '.join(TRACE_FORMATS)}")
        self._set(enabled=enabled, format=format, file=file, render=render)

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None,
                 debug: bool = False) -> TraceSettings:
        """The settings the environment asks for (``debug=True`` turns tracing on too).

        - ``DEBUG``: tracing on (any word but ``0``/``false``/``no``/``off``);
        - ``APITX_DEBUG``: the format, ``text`` (default), ``json`` or ``curl``;
        - ``APITX_DEBUG_FILE``: append to this file instead of stderr;
        - ``APITX_DEBUG_UNSAFE``: show secrets;
        - ``APITX_DEBUG_MAX_BODY``: bytes of a body shown (default 65536).

        A bad value raises :class:`~apitx.SettingsError` naming the variable.
        """
        env = os.environ if environ is None else environ
        format = env.get("APITX_DEBUG", "").strip().lower() or "text"
        if format not in TRACE_FORMATS:
            raise SettingsError(f"APITX_DEBUG={format!r} is not a trace format: use "
                                f"{', '.join(TRACE_FORMATS)}")
        text = env.get("APITX_DEBUG_MAX_BODY", "").strip()
        try:
            max_body = int(text) if text else DEFAULT_MAX_BODY
            if max_body <= 0:
                raise ValueError(text)
        except ValueError:
            raise SettingsError(f"APITX_DEBUG_MAX_BODY={text!r}: give a positive number of "
                                f"bytes (default {DEFAULT_MAX_BODY})") from None
        return cls(enabled=bool(debug) or env_flag("DEBUG", env), format=format,
                   file=env.get("APITX_DEBUG_FILE", "").strip(),
                   render=RenderOptions(unsafe=env_flag("APITX_DEBUG_UNSAFE", env),
                                        max_body=max_body))

    @classmethod
    def coerce(cls, value: TraceLike, debug: bool = False) -> TraceSettings:
        """What ``API(trace=...)`` accepts.

        None: the environment decides (:meth:`from_env`); a TraceSettings: as
        it is; True or a format name: on, the rest from the environment;
        False: off, whatever the environment says.
        """
        if isinstance(value, TraceSettings):
            return value
        if value is None:
            return cls.from_env(debug=debug)
        if isinstance(value, bool):
            settings = cls.from_env(debug=value)
            return settings if value else cls(render=settings.render)
        if isinstance(value, str):
            settings = cls.from_env(debug=True)
            return cls(enabled=True, format=value.strip().lower(), file=settings.file,
                       render=settings.render)
        raise SettingsError(f"trace={value!r}: give True, False, a format "
                            f"({', '.join(TRACE_FORMATS)}), an apitx.TraceSettings, or None "
                            "to follow DEBUG and APITX_DEBUG*")


TraceLike = Union[TraceSettings, bool, str, None]
