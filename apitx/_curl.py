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

>>> from apitx import API
>>> API.factory().curl('GET', 'instances')          # prepares the request, sends nothing
'curl --unix-socket /var/lib/lxd/unix.socket http://lxd/1.0/instances'
"""

from __future__ import annotations

import shlex
from typing import Any, List, Tuple

from ._config import RenderOptions
from ._endpoint import UNIX_BASE_URL
from ._redact import redact_url
from ._render import Exchange, content_type_of, redact_text, shown_request_headers

#: The URL prefix curl needs for a socket: any host name works with
#: ``--unix-socket``; ``lxd`` matches what LXD's own tools send.
CURL_UNIX_BASE_URL = "http://lxd"


def render_curl(exchange: Exchange, options: RenderOptions, strict: bool = False) -> str:
    """The curl command for an exchange's request, secrets redacted unless unsafe.

    A pure function: nothing is sent, read or written. A binary body (or text
    with NUL) is piped in from ``printf``. With ``strict``, a body that cannot
    be replayed (binary over the body limit, a stream with no file name)
    raises ValueError (the CLI says so); without it
    (traces must never raise) it is replaced by a ``@'<…not shown>'``
    placeholder, so the line still says what was sent.
    """
    words: List[str] = ["curl"]
    url = exchange.url if options.unsafe else redact_url(exchange.url)
    if exchange.endpoint.socket_path:
        words += ["--unix-socket", exchange.endpoint.socket_path]
        if url.startswith(UNIX_BASE_URL):
            url = CURL_UNIX_BASE_URL + url[len(UNIX_BASE_URL):]
    else:
        words += _tls_options(exchange.cert, exchange.verify)
    method = (exchange.method or "GET").upper()
    if method == "HEAD":
        words.append("--head")  # curl -X HEAD would wait for a body that never comes
    elif method != "GET":
        words += ["-X", method]
    headers = shown_request_headers(exchange.request_headers, options)
    for name, value in headers.items():
        words += ["-H", f"{name}: {value}"]
    body = exchange.request_body
    if body not in (None, b"", "") and not any(n.lower() == "content-type" for n in headers):
        # Without this curl adds a form Content-Type, and LXD then reads a
        # pushed file as a form: the file arrives empty.
        words += ["-H", "Content-Type:"]
    body_words, stdin = _body_options(body, content_type_of(exchange.request_headers), options,
                                      strict)
    words += body_words
    words.append(url)
    return stdin + " ".join(shlex.quote(word) for word in words)


def _tls_options(cert: Any, verify: Any) -> List[str]:
    """curl's options for the session's client certificate and server trust."""
    options: List[str] = []
    if isinstance(cert, (tuple, list)):
        options += ["--cert", cert[0], "--key", cert[1]]
    elif cert:
        options += ["--cert", cert]
    if verify is False:
        options.append("--insecure")
    elif isinstance(verify, str):
        options += ["--cacert", verify]
    return options


def _body_options(body: Any, content_type: str, options: RenderOptions,
                  strict: bool) -> Tuple[List[str], str]:
    """curl's body options, and what to pipe into curl first ('' for nothing)."""
    if body is None or body == b"" or body == "":
        return [], ""
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogatepass")
    if isinstance(body, (bytes, bytearray)):
        data = bytes(body)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None and "\0" not in text:
            return ["--data-binary", text if options.unsafe else redact_text(text, content_type)], ""
        # Binary, or text with NUL (which no argument can hold): piped in
        # from printf, which POSIX shells all have, so the line still runs.
        if len(data) <= options.max_body:
            return ["--data-binary", "@-"], f"printf {shlex.quote(_printf_format(data))} | "
        if strict:
            raise ValueError(
                f"the request body is {len(data)} bytes of binary data, more than fits on a "
                "command line: put it in a file and send it with --data-binary @FILE")
        return ["--data-binary", f"@<binary body, {len(data)} bytes, not shown>"], ""
    name = getattr(body, "name", None)
    if isinstance(name, str) and not name.startswith("<"):
        # An open file (apitx --data-binary @FILE): curl reads the same path.
        return ["--data-binary", f"@{name}"], ""
    if strict:
        raise ValueError(
            f"the request body is a stream ({type(body).__name__}) with no file name, which "
            "curl cannot replay: save it to a file and send it with --data-binary @FILE")
    return ["--data-binary", "@<streamed body, not shown>"], ""


def _printf_format(data: bytes) -> str:
    """A printf format that prints exactly ``data``: printable ASCII as it is,
    every other byte (and ``\\``, ``%``, ``'``) as a 3-digit octal escape.

    >>> print(_printf_format(b"a\\xff%"))
    a\\377\\045
    """
    text = "".join(chr(b) if 0x20 <= b < 0x7F and b not in b"\\%'" else f"\\{b:03o}"
                   for b in data)
    # printf would take a leading "-" for an option.
    return "\\055" + text[1:] if text.startswith("-") else text
