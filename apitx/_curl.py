"""A request as a curl command that runs as it is.

Operators share and replay API calls as curl lines; ``apitx --curl`` prints
one instead of sending the request. The command talks to the same server the
:class:`API` would: ``--unix-socket`` for a socket (apitx's internal
``http+unix://lxd`` prefix becomes curl's ``http://lxd``), and the session's
client certificate and trusted server certificate for HTTPS.

Every word is quoted with :func:`shlex.quote`, so any body or header survives
the shell. A body that cannot be written on a command line (bytes that are not
UTF-8, a stream) is referenced as ``--data-binary @file`` when it is an open
file, and refused with a :class:`ValueError` otherwise.

Example::

    prepared = api.session.prepare_request(requests.Request('GET', api.url('instances')))
    curl_command(prepared, api)
    # "curl --unix-socket /var/lib/lxd/unix.socket 'http://lxd/1.0/instances'"
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any, List

import requests
from requests.utils import default_headers

from ._endpoint import UNIX_BASE_URL

if TYPE_CHECKING:  # pragma: no cover
    from ._api import API

#: The URL prefix curl needs for a socket: any host name works with
#: ``--unix-socket``; ``lxd`` matches what LXD's own tools send.
CURL_UNIX_BASE_URL = "http://lxd"

#: Headers curl computes itself (a stale copy would corrupt the request), and
#: ``Connection``, meaningless for one request.
_COMPUTED_HEADERS = frozenset({"content-length", "connection", "transfer-encoding", "host"})


def curl_command(request: requests.PreparedRequest, api: API) -> str:
    """The shell command that sends ``request`` to ``api``'s server with curl.

    A pure function: nothing is sent, read or written. Raises ValueError when
    the body cannot be put on a command line.

    >>> print(curl_command(api.session.prepare_request(requests.Request(
    ...     'POST', api.url('instances'), json={'name': 'c1'})), api))
    curl --unix-socket /var/lib/lxd/unix.socket -X POST -H 'Content-Type: application/json' --data-binary '{"name": "c1"}' http://lxd/1.0/instances
    """
    words: List[str] = ["curl"]
    url = request.url or ""
    endpoint = api.endpoint
    if endpoint.socket_path:
        words += ["--unix-socket", endpoint.socket_path]
        if url.startswith(UNIX_BASE_URL):
            url = CURL_UNIX_BASE_URL + url[len(UNIX_BASE_URL):]
    else:
        words += _tls_options(api.session)
    method = (request.method or "GET").upper()
    if method == "HEAD":
        words.append("--head")  # curl -X HEAD would wait for a body that never comes
    elif method != "GET":
        words += ["-X", method]
    headers = _sent_headers(request)
    for name, value in headers:
        words += ["-H", f"{name}: {value}"]
    body = _body_options(request.body)
    if body and not any(name.lower() == "content-type" for name, _ in headers):
        # requests sent no Content-Type, but curl adds a form-urlencoded one
        # to a body, and a Go server (LXD) then parses the body as a form:
        # a pushed file arrives empty. 'Content-Type:' removes curl's.
        words += ["-H", "Content-Type:"]
    words += body
    words.append(url)
    return " ".join(shlex.quote(word) for word in words)


def _tls_options(session: requests.Session) -> List[str]:
    """curl's options for the session's client certificate and server trust."""
    options: List[str] = []
    cert = session.cert
    if isinstance(cert, (tuple, list)):
        options += ["--cert", cert[0], "--key", cert[1]]
    elif cert:
        options += ["--cert", cert]
    if session.verify is False:
        options.append("--insecure")
    elif isinstance(session.verify, str):
        options += ["--cacert", session.verify]
    return options


def _sent_headers(request: requests.PreparedRequest) -> List[Any]:
    """The headers worth passing: not those curl computes, nor requests' own
    defaults (curl sends its own ``User-Agent`` and ``Accept``), unless the
    caller changed them."""
    defaults = default_headers()
    kept = []
    for name, value in request.headers.items():
        if name.lower() in _COMPUTED_HEADERS:
            continue
        if defaults.get(name) == value:
            continue
        kept.append((name, value))
    return kept


def _body_options(body: Any) -> List[str]:
    if body is None or body == b"" or body == "":
        return []
    if isinstance(body, str):
        return ["--data-binary", body]
    if isinstance(body, (bytes, bytearray)):
        try:
            return ["--data-binary", bytes(body).decode("utf-8")]
        except UnicodeDecodeError:
            raise ValueError(
                f"the request body is {len(body)} bytes of binary data, which cannot be "
                "written on a command line: put it in a file and send it with "
                "--data-binary @FILE") from None
    name = getattr(body, "name", None)
    if isinstance(name, str) and not name.startswith("<"):
        # An open file (apitx --data-binary @FILE): curl reads the same path.
        return ["--data-binary", f"@{name}"]
    raise ValueError(
        f"the request body is a stream ({type(body).__name__}) with no file name, which "
        "curl cannot replay: save it to a file and send it with --data-binary @FILE")
