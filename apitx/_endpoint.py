"""Where the server is: a Unix socket or an HTTP(S) base URL.

An :class:`Endpoint` is a value object made once, from whatever the caller
gave (a socket path, ``unix:///path``, ``http(s)://host:port``, or nothing at
all, which means "discover the local LXD or Incus socket the way ``lxc``
and ``incus`` do"; ``'lxd'`` or ``'incus'`` keeps to one of them).

The socket path lives here and in the transport adapter, never in request
URLs: requests to a socket go to ``http+unix://lxd/1.0/...`` and the adapter
mounted for that prefix knows the path. So URLs stay
short, logs never show ``%2Fvar%2Flib%2F…``, and cassettes recorded on one
machine replay on another whatever its socket path.

>>> from apitx import Endpoint
>>> Endpoint.parse('/var/lib/lxd/unix.socket').describe('/1.0/instances')
'unix:/var/lib/lxd/unix.socket /1.0/instances'
"""

from __future__ import annotations

import os
from typing import List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union
from urllib.parse import unquote, urlsplit

from . import _checks
from ._exceptions import APIConnectionError, EndpointError
from ._redact import redact_url
from ._value import Value

#: The URL prefix of every request sent to a Unix socket. ``http+unix`` and not
#: ``http``: an ``HTTP_PROXY`` in the environment must never capture it, and a
#: real host named ``lxd`` stays reachable with plain ``http://lxd``.
UNIX_BASE_URL = "http+unix://lxd"

#: The families discovery knows, and the words that restrict it to one:
#: ``API.factory('incus')``. A bare word is never a socket path (a path is
#: absolute or starts with ``./``), so the two cannot be confused.
FAMILIES = ("lxd", "incus")

#: Where the Go clients look for the local daemon after the environment
#: variables, in their order: LXD's snap, then Debian's (and LXD's own
#: default); then Incus's ``/run/incus`` (Fedora and others), then its default.
WELL_KNOWN_SOCKETS: Tuple[Tuple[str, str], ...] = (
    ("lxd", "/var/snap/lxd/common/lxd/unix.socket"),
    ("lxd", "/var/lib/lxd/unix.socket"),
    ("incus", "/run/incus/unix.socket"),
    ("incus", "/var/lib/incus/unix.socket"),
)

#: The socket ``incus-user`` serves beside Incus's own: any local user may
#: write it, and the daemon confines them to the project ``user-<uid>``.
USER_SOCKET = "unix.socket.user"


class Candidate(NamedTuple):
    """A socket discovery tries: where the path came from (``$LXD_DIR``,
    ``default``, ...), the path, its family, and whether it is Incus's
    per-user socket."""

    origin: str
    path: str
    family: str
    user: bool = False


class Endpoint(Value):
    """A server to talk to.

    ``socket_path`` is set for a Unix socket, else None; ``base_url`` is what
    request paths are appended to; ``display`` is how people see it.
    """

    base_url: str
    socket_path: Optional[str]
    #: The project the server confines this endpoint to, when discovery knows
    #: one: ``user-<uid>`` on Incus's per-user socket. Else None.
    project: Optional[str]

    def __init__(self, base_url: str, socket_path: Optional[str] = None,
                 project: Optional[str] = None) -> None:
        self._set(base_url=base_url, socket_path=socket_path, project=project)

    @property
    def display(self) -> str:
        """``unix:/var/lib/lxd/unix.socket`` or ``https://host:8443``, as configured,
        with any user:password in the URL redacted."""
        return f"unix:{self.socket_path}" if self.socket_path else redact_url(self.base_url)

    @property
    def origin(self) -> str:
        """Where requests go, before their path: ``unix:/…/unix.socket`` or
        ``https://host:8443`` (without a path prefix: request paths carry it)."""
        if self.socket_path:
            return self.display
        parts = urlsplit(self.display)
        return f"{parts.scheme}://{parts.netloc}"

    def describe(self, path: str, unsafe: bool = False) -> str:
        """A request path as sent, as people read it, with the endpoint in front.

        Query parameters named like secrets are redacted unless ``unsafe``.

        >>> Endpoint.parse('https://h:8443').describe('/1.0?secret=x')
        'https://h:8443/1.0?secret=<redacted>'
        """
        shown = path if unsafe else redact_url(path)
        return f"{self.origin} {shown}" if self.socket_path else self.origin + shown

    def describe_url(self, url: str, unsafe: bool = False) -> str:
        """:meth:`describe` for a full request URL."""
        return self.describe(path_and_query(url), unsafe)

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        """Understand an endpoint given by a person.

        Accepted: an absolute or ``./`` relative socket path; ``unix:///path``
        (or ``unix:/path``); ``http+unix://%2Fpath`` (the percent-encoded
        form of older clients); ``http://host[:port][/prefix]`` and
        ``https://…``.
        """
        if not isinstance(text, str) or not text.strip():
            raise EndpointError(
                f"endpoint {text!r} is empty: give a socket path such as "
                "/var/lib/lxd/unix.socket, a unix:///path URL, or https://host:8443 "
                "(or endpoint=None to discover the local LXD)")
        text = text.strip()
        if text.startswith(("/", "./", "../")):
            return cls(base_url=UNIX_BASE_URL, socket_path=text)
        try:
            parts = urlsplit(text)
            hostname = parts.hostname  # checks a bracketed host: [::1] yes, [1] no
        except ValueError as exc:  # 'https://[::1', an address from a hostile token
            raise EndpointError(f"endpoint {text!r} is not a URL ({exc}): give "
                                "https://host:8443 or a socket path") from None
        scheme = parts.scheme.lower()
        if scheme == "unix":
            path = parts.path if not parts.netloc else None
            if path and path.startswith("/"):
                return cls(base_url=UNIX_BASE_URL, socket_path=path)
        elif scheme == "http+unix":
            path = unquote(parts.netloc)
            if path.startswith("/"):
                return cls(base_url=UNIX_BASE_URL, socket_path=path)
        elif scheme in ("http", "https") and hostname:
            if parts.query or parts.fragment:
                raise EndpointError(
                    f"endpoint {text!r} has a query or fragment: give only "
                    f"{scheme}://host[:port][/prefix]")
            try:
                parts.port  # noqa: B018 - validates the port
            except ValueError as exc:
                raise EndpointError(f"endpoint {text!r} has a bad port: {exc}") from exc
            return cls(base_url=f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}")
        raise EndpointError(
            f"endpoint {text!r} is not understood: give a socket path "
            "(/var/lib/lxd/unix.socket, or ./relative.socket), unix:///path/to.socket, "
            "http://host:port or https://host:8443")

    @classmethod
    def coerce(cls, value: Union[Endpoint, str]) -> Endpoint:
        """An Endpoint as it is, or one parsed from a string (see :meth:`parse`)."""
        return value if isinstance(value, Endpoint) else cls.parse(value)

    @classmethod
    def resolve(cls, value: Union[Endpoint, str, None]) -> Endpoint:
        """What :meth:`API.factory` does with its ``endpoint``: None discovers
        any local server, ``'lxd'`` or ``'incus'`` discovers one of that
        family; anything else goes to :meth:`coerce`.

        >>> Endpoint.resolve('incus').socket_path
        '/var/lib/incus/unix.socket'
        """
        if value is None:
            return cls.discover()
        if isinstance(value, str) and value.strip().lower() in FAMILIES:
            return cls.discover(family=value.strip().lower())
        return cls.coerce(value)

    @classmethod
    def discover(cls, environ: Optional[Mapping[str, str]] = None,
                 family: Optional[str] = None, *,
                 well_known: Sequence[Tuple[str, str]] = WELL_KNOWN_SOCKETS) -> Endpoint:
        """Find the local LXD or Incus socket the way ``lxc`` and ``incus`` do:
        the first that exists and that this user may write.

        Tried in order: ``$LXD_SOCKET``,
        ``$LXD_DIR/unix.socket``, ``$INCUS_SOCKET``, ``$INCUS_DIR/unix.socket``,
        LXD's snap and Debian sockets, Incus's ``/run/incus`` and
        ``/var/lib/incus`` sockets, and last Incus's per-user sockets
        (``unix.socket.user``: the endpoint's ``project`` is then
        ``user-<uid>``, the only project that socket serves). ``family``
        (``'lxd'`` or ``'incus'``) keeps to one. A socket this user cannot
        write is passed over, as the Go clients do: connecting would only
        fail with "permission denied". Raises :class:`APIConnectionError`
        listing every path with why it was passed over.

        >>> from apitx import Endpoint
        >>> Endpoint.discover().socket_path, Endpoint.discover(family='incus').socket_path
        ('/var/lib/lxd/unix.socket', '/var/lib/incus/unix.socket')
        >>> Endpoint.discover({'LXD_SOCKET': '/srv/none.socket'}, family='lxd', well_known=())
        Traceback (most recent call last):
        ...
        apitx.APIConnectionError: no usable LXD socket; tried /srv/none.socket ($LXD_SOCKET): missing. ...
        """
        if family is not None and family not in FAMILIES:
            raise EndpointError(f"family {family!r} is not known: give one of "
                                f"{', '.join(FAMILIES)}, or None for any")
        environ = _checks.optional_mapping(environ, "Endpoint.discover(environ)")
        tried = candidate_sockets(os.environ if environ is None else environ, family,
                                  well_known=well_known)
        reasons = []
        for candidate in tried:
            reason = _unusable(candidate.path, candidate.family)
            if reason is None:
                return cls(base_url=UNIX_BASE_URL, socket_path=candidate.path,
                           project=f"user-{os.getuid()}" if candidate.user else None)
            reasons.append(f"{candidate.path} ({candidate.origin}): {reason}")
        servers = {"lxd": "LXD", "incus": "Incus"}.get(family or "", "LXD or Incus")
        raise APIConnectionError(
            f"no usable {servers} socket; tried {'; '.join(reasons)}. Start the daemon "
            "(install it first if needed: apt-get install lxd, or incus), join the "
            "group that owns its socket, set LXD_DIR/INCUS_DIR to the directory holding its "
            "unix.socket, or pass endpoint= to API.factory()")


def _unusable(path: str, family: str) -> Optional[str]:
    """Why discovery passes ``path`` over, or None when it can use it."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"cannot be looked at ({exc.strerror})"
    if os.access(path, os.W_OK):
        return None
    group = _group_name(info.st_gid)
    admin = {"lxd": "lxd", "incus": "incus-admin"}[family]
    fix = ("run as root" if info.st_gid == 0 else
           f"join group {group} (then log in again)")
    if group != admin and info.st_gid != 0:
        fix += f"; the packaged daemon's group is {admin}"
    return f"exists, not writable by uid {os.getuid()}: {fix}"


def _group_name(gid: int) -> str:
    try:
        import grp
        return grp.getgrgid(gid).gr_name
    except (ImportError, KeyError):
        return str(gid)


def path_and_query(url: str) -> str:
    """The part of a URL a server sees: ``/1.0/instances?recursion=1``.

    >>> path_and_query('http+unix://lxd/1.0/instances?recursion=1')
    '/1.0/instances?recursion=1'
    """
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def candidate_sockets(environ: Mapping[str, str], family: Optional[str] = None, *,
                      well_known: Sequence[Tuple[str, str]] = WELL_KNOWN_SOCKETS
                      ) -> List[Candidate]:
    """Every socket discovery tries, in order; ``family`` keeps to one.

    The variables first (LXD's, then Incus's), then ``well_known``; Incus's
    per-user sockets (``unix.socket.user`` beside each Incus directory's
    socket) come last, so one is used only when no other socket is usable.
    """
    found: List[Candidate] = []
    if environ.get("LXD_SOCKET"):
        found.append(Candidate("$LXD_SOCKET", environ["LXD_SOCKET"], "lxd"))
    if environ.get("LXD_DIR"):
        found.append(Candidate("$LXD_DIR", os.path.join(environ["LXD_DIR"], "unix.socket"),
                               "lxd"))
    if environ.get("INCUS_SOCKET"):
        found.append(Candidate("$INCUS_SOCKET", environ["INCUS_SOCKET"], "incus"))
    if environ.get("INCUS_DIR"):
        found.append(Candidate("$INCUS_DIR",
                               os.path.join(environ["INCUS_DIR"], "unix.socket"), "incus"))
    found.extend(Candidate("default", path, kind) for kind, path in well_known)
    found.extend(Candidate(c.origin, os.path.join(os.path.dirname(c.path), USER_SOCKET),
                           "incus", user=True)
                 for c in list(found) if c.family == "incus" and c.origin != "$INCUS_SOCKET")
    return [c for c in found if family is None or c.family == family]
