"""Hide secrets before anything is shown to a person or written to a log.

One rule, used by every rendering (traces in every format, curl lines,
summaries, exception texts and their causes) and by :mod:`apitx.ensure`
diffs: a value is secret when its *name* says so. Names are matched
case-insensitively, on their words: ``password``, ``passwd``, ``passphrase``,
``secret``, ``token`` (so ``trust_token``, ``X-Auth-Token``), ``cookie``,
``authorization``, ``credential``, ``session`` ids, ``csrf``/``xsrf``,
``jwt``, ``signature``, an API or access key (``api_key``, ``apiKey``,
``access_key``), any header or query name with ``key`` (``X-API-Key``),
and a private key (``private_key``, ``privateKey``). LXD's own secrets fit:
the trust password (``core.trust_password``), join tokens, the client key,
an exec's websocket ``secret``. Headers that carry URLs (``Location``,
``Content-Location``, ``Link``) have those URLs' secrets redacted too, and
free text (an error page quoted in a message) has ``name=value`` and
``name: value`` pairs with secret names redacted.

Example::

    redact({'config': {'core.trust_password': 'hunter2'}})
    # {'config': {'core.trust_password': '<redacted>'}}
"""

from __future__ import annotations

import re
from typing import Any, Dict, Iterable, List, Mapping, Tuple
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

REDACTED = "<redacted>"

#: Secret words anywhere in a name. ``key`` alone is too broad for JSON
#: bodies (LXD objects have ``key``-named public fields), so it counts there
#: only as "private key"; in headers and query names it always counts.
_SECRET_WORDS = re.compile(r"pass(word|wd|phrase)|secret|token|cookie|authori[sz]ation"
                           r"|credential|session[-_]?id|^session$|[cx]srf|jwt|signature"
                           r"|(private|api|access)[-_ .]?key", re.IGNORECASE)
_KEY_WORD = re.compile(r"key", re.IGNORECASE)
#: Response headers whose value is (or holds) a URL, which may carry secrets.
_URL_HEADERS = frozenset({"location", "content-location", "link", "refresh"})
_URL_IN_TEXT = re.compile(r"[a-z][a-z0-9+.-]*://[^\s<>\"']+", re.IGNORECASE)
#: A name and its separator in free text (``name=``, ``name: ``, ``"name": ``);
#: the value is looked at separately (:data:`_VALUE_IN_TEXT`), so a value
#: that looks like a name (``denied: password=x``) is still seen as one.
_NAME_IN_TEXT = re.compile(r"""(?P<name>["']?[A-Za-z][\w.-]*["']?)\s*[=:]\s*""")
#: A value: quoted, or an authorization scheme and its credentials, or a word.
_VALUE_IN_TEXT = re.compile(r"""(?:"[^"]*"|'[^']*'|(?:Bearer|Basic|Digest|Token)\s+[^\s,;&"'}]+|[^\s,;&"'}]+)""",
                            re.IGNORECASE)
#: JSON keys whose value maps innocent names to secrets: an exec operation's
#: ``fds`` (``{"0": <secret>, "control": <secret>}``, each the credential to
#: a running command's websocket) shows in its POST answer, every /wait and
#: every ``operation`` event.
_SECRET_MAPS = frozenset({"fds"})


def is_secret_name(name: Any) -> bool:
    """True when a JSON key names a secret.

    >>> is_secret_name('trust_token'), is_secret_name('name')
    (True, False)
    """
    return isinstance(name, str) and (_SECRET_WORDS.search(name) is not None
                                      or name in _SECRET_MAPS)


def is_secret_header(name: str) -> bool:
    """True for a header or query parameter name that carries a secret."""
    return _SECRET_WORDS.search(name) is not None or _KEY_WORD.search(name) is not None


def redact(tree: Any) -> Any:
    """A copy of a JSON tree with every secret value replaced by ``<redacted>``.

    Walks with a stack, so any depth is fine; the input is not modified.
    """
    if not isinstance(tree, (dict, list)):
        return tree
    root: List[Any] = [None]
    todo: List[Tuple[Any, Any, Any]] = [(tree, root, 0)]  # (source, parent, slot)
    while todo:
        source, parent, slot = todo.pop()
        if isinstance(source, dict):
            copy: Any = {}
            for key, value in source.items():
                # None, "" and booleans say whether a secret is set, not what it
                # is (LXD shows core.trust_password as true): keep them.
                if is_secret_name(key) and not (value is None or value == ""
                                                or isinstance(value, bool)):
                    copy[key] = REDACTED
                else:
                    copy[key] = None
                    todo.append((value, copy, key))
        elif isinstance(source, list):
            copy = [None] * len(source)
            todo.extend((value, copy, index) for index, value in enumerate(source))
        else:
            copy = source
        parent[slot] = copy
    return root[0]


def redact_headers(headers: Mapping[str, str]) -> Dict[str, str]:
    """Headers with secret ones (Authorization, Cookie, X-Auth-Token…)
    redacted, and the URLs in Location-like headers redacted as URLs."""
    return {name: REDACTED if is_secret_header(name) else
            _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), value)
            if name.lower() in _URL_HEADERS else value
            for name, value in headers.items()}


def redact_free_text(text: str) -> str:
    """Text of unknown shape (an error page, a message) with its secrets
    redacted: URLs as :func:`redact_url` does, and every ``name=value``,
    ``name: value`` or ``"name": "value"`` whose name is secret.

    >>> redact_free_text('denied: password=hunter2 for https://u:p@h/x?token=t')
    'denied: password=<redacted> for https://<redacted>@h/x?token=<redacted>'
    """
    text = _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)
    shown: List[str] = []
    done = 0
    for found in _NAME_IN_TEXT.finditer(text):
        if found.start() < done or not is_secret_header(found.group("name").strip("\"'")):
            continue
        value = _VALUE_IN_TEXT.match(text, found.end())
        if value is None:
            continue
        quote_mark = value.group(0)[0] if value.group(0)[0] in "\"'" else ""
        shown += [text[done:found.end()], quote_mark, REDACTED, quote_mark]
        done = value.end()
    return "".join(shown) + text[done:]


def redact_url(url: str) -> str:
    """A URL with its userinfo and its secret query parameters redacted."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(is_secret_header(name) for name, _ in pairs):
            query = urlencode(_redact_pairs(pairs), quote_via=quote, safe="<>")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _redact_pairs(pairs: Iterable[Tuple[str, str]]) -> List[Tuple[str, str]]:
    return [(name, REDACTED if is_secret_header(name) else value) for name, value in pairs]
