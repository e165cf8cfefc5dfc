"""Where a redirect may lead, and with which method: pure rules.

LXD never redirects, so apitx follows a redirect only when asked
(``follow_redirects=True``) and only within the endpoint: a redirect to
another host, scheme or off the Unix socket would carry the request's body
and credentials to a server the caller never named.

Example:

>>> resolve('http+unix://lxd/1.0/a', '/1.0/b')
'http+unix://lxd/1.0/b'
>>> same_origin('https://h:8443/x', 'https://H:8443')
True
>>> redirect_method(303, 'POST')          # and no body
'GET'
"""

from __future__ import annotations

from typing import Optional
from urllib.parse import urljoin, urlsplit, urlunsplit


def resolve(base: str, location: str) -> str:
    """A Location resolved against the request's URL. urljoin() leaves a
    relative Location alone for schemes it does not know (``http+unix``),
    so the join is made as http and the scheme put back."""
    parts = urlsplit(base)
    joined = urlsplit(urljoin(urlunsplit(("http",) + tuple(parts[1:])), location))
    return urlunsplit((parts.scheme if joined.scheme == "http" and not urlsplit(location).scheme
                       else joined.scheme,) + tuple(joined[1:]))


def origin(url: str) -> str:
    """``scheme://host:port`` of a URL, lower-cased, for comparing endpoints."""
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def same_origin(url: str, base_url: str) -> bool:
    """True when ``url`` is on the endpoint whose base URL is ``base_url``."""
    return origin(url) == origin(base_url)


def redirect_method(status: int, method: Optional[str]) -> Optional[str]:
    """The method a redirect asks for, or None to repeat the request as it
    was (method and body): 301, 302 and 303 become a GET without a body (a
    HEAD stays a HEAD), as browsers do; 307 and 308 repeat it."""
    if status in (307, 308):
        return None
    return "HEAD" if method == "HEAD" else "GET"
