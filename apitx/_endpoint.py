"""Where the server is: a Unix socket or an HTTP(S) base URL.

An :class:`Endpoint` is a value object made once, from whatever the caller
gave (a socket path, ``unix:///path``, ``http(s)://host:port``, or nothing at
all, which means "discover the local LXD socket the way ``lxc`` does").

The socket path lives here and in the transport adapter, never in request
URLs: requests to a socket go to ``http+unix://lxd/1.0/...`` and the adapter
mounted for that prefix knows the path. So URLs stay
short, logs never show ``%2Fvar%2Flib%2F…``, and cassettes recorded on one
machine replay on another whatever its socket path.

Example::

    Endpoint.parse('/var/lib/lxd/unix.socket').describe('/1.0/instances')
    # 'unix:/var/lib/lxd/unix.socket /1.0/instances'
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List, Mapping, Optional, Tuple, Union
from urllib.parse import unquote, urlsplit

from ._exceptions import APIConnectionError, EndpointError
from ._redact import redact_url

#: The URL prefix of every request sent to a Unix socket. ``http+unix`` and not
#: ``http``: an ``HTTP_PROXY`` in the environment must never capture it, and a
#: real host named ``lxd`` stays reachable with plain ``http://lxd``.
UNIX_BASE_URL = "http+unix://lxd"

#: Where LXD's own client looks for the local daemon, in its order, after the
#: two environment variables.
WELL_KNOWN_SOCKETS = (
    "/var/snap/lxd/common/lxd/unix.socket",
    "/var/lib/lxd/unix.socket",
)


@dataclass(frozen=True)
class Endpoint:
    """A server to talk to.

    ``socket_path`` is set for a Unix socket, else None; ``base_url`` is what
    request paths are appended to; ``display`` is how people see it.
    """

    base_url: str
    socket_path: Optional[str] = None

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
        parts = urlsplit(text)
        scheme = parts.scheme.lower()
        if scheme == "unix":
            path = parts.path if not parts.netloc else None
            if path and path.startswith("/"):
                return cls(base_url=UNIX_BASE_URL, socket_path=path)
        elif scheme == "http+unix":
            path = unquote(parts.netloc)
            if path.startswith("/"):
                return cls(base_url=UNIX_BASE_URL, socket_path=path)
        elif scheme in ("http", "https") and parts.hostname:
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
    def discover(cls, environ: Optional[Mapping[str, str]] = None) -> Endpoint:
        """Find the local LXD socket the way ``lxc`` does: the first that exists.

        Tried in order: ``$LXD_SOCKET``, ``$LXD_DIR/unix.socket``, the snap's
        socket, Debian's socket. Raises :class:`APIConnectionError` naming every
        path tried when none exists.
        """
        tried = candidate_sockets(os.environ if environ is None else environ)
        for _, path in tried:
            if os.path.exists(path):
                return cls(base_url=UNIX_BASE_URL, socket_path=path)
        listed = ", ".join(f"{path} ({origin})" for origin, path in tried)
        raise APIConnectionError(
            f"no LXD socket found; tried {listed}. Install LXD and start it "
            "(apt-get install lxd, or snap install lxd), or set LXD_DIR to the "
            "directory holding its unix.socket, or pass endpoint= to API.factory()")


def path_and_query(url: str) -> str:
    """The part of a URL a server sees: ``/1.0/instances?recursion=1``.

    >>> path_and_query('http+unix://lxd/1.0/instances?recursion=1')
    '/1.0/instances?recursion=1'
    """
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def candidate_sockets(environ: Mapping[str, str]) -> List[Tuple[str, str]]:
    """``(where it came from, path)`` for every socket discovery tries, in order."""
    found = []
    if environ.get("LXD_SOCKET"):
        found.append(("$LXD_SOCKET", environ["LXD_SOCKET"]))
    if environ.get("LXD_DIR"):
        found.append(("$LXD_DIR", os.path.join(environ["LXD_DIR"], "unix.socket")))
    found.extend(("default", path) for path in WELL_KNOWN_SOCKETS)
    return found
