"""Hide secrets before anything is shown to a person or written to a log.

One rule, used by every rendering (traces in every format, curl lines,
summaries, exception texts and their causes, exec results and errors) and
by :mod:`apitx.ensure` diffs: redact *credentials*, never words. A value is
secret when its *name* says so. Names are matched case-insensitively, on
their words: ``password``, ``passwd``, ``passphrase``, ``pass`` and ``pwd``
as words of their own (``DB_PASS``, ``MYSQL_PWD``; not ``PWD``, the working
directory, nor ``bypass``), ``secret``, ``token`` (so ``trust_token``,
``X-Auth-Token``), ``cookie``, ``authorization``, ``credential``,
``session`` ids, ``csrf``/``xsrf``, ``jwt``, ``signature``, an API or
access key (``api_key``, ``apiKey``, ``access_key``), any header or query
name with ``key`` (``X-API-Key``), and a private key (``private_key``,
``privateKey``). LXD's own secrets fit: the trust password
(``core.trust_password``), join tokens, the client key, an exec's websocket
``secret``, and the websocket secrets a migration's operation announces in
its ``metadata`` (``control``, ``fs``). An environment variable (an exec's
``environment``, an instance's ``environment.*`` config) with ``key`` as a
word (``ENCRYPTION_KEY``) is secret too.

Credentials inside values are found wherever text is shown: a URL's
``user:password@`` and its secret query parameters (``?secret=…``, also in
a bare path and query such as LXD logs), ``name=value``, ``name: value`` and
``"name": "value"`` pairs with secret names, LXD's config error ``cannot set
'<secret name>' to '<value>'``, and an exec command's ``--password x``,
``TOKEN=…``, ``mysql -p…``, ``sshpass -p …`` and ``curl -u user:…``.

What stays readable, because it is a server's words and not a credential:
``key`` as a word before a colon (``Unknown configuration key: bogus.key``
names the key a user mistyped), and prose after a *quoted* name
(``cannot set 'core.trust_password': invalid type float64``): a quoted name
is JSON or Python syntax, whose values are quoted strings or numbers.

>>> redact({'config': {'core.trust_password': 'hunter2'}})
{'config': {'core.trust_password': '<redacted>'}}
"""

from __future__ import annotations

import posixpath
import re
from functools import lru_cache
from typing import (Any, Callable, Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence,
                    Set, Tuple)
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from ._lazy import LazyPattern

REDACTED = "<redacted>"

#: Secret words anywhere in a name. ``key`` alone is too broad for JSON
#: bodies (LXD objects have ``key``-named public fields) and for prose
#: ("Unknown configuration key: x"), so it counts there only as a private,
#: API or access key; in headers, query names and ``name=value`` it always
#: counts. ``pass`` and ``pwd`` count only as words of their own
#: (``DB_PASS``, ``MYSQL_PWD``, ``dbPass``): ``PWD`` alone is the working
#: directory, and ``bypass`` or ``passthrough`` are no passwords.
_SECRET_WORDS = LazyPattern(r"pass(word|wd|phrase)|secret|token|cookie|authori[sz]ation"
                           r"|credential|session[-_]?id|^session$|[cx]srf|jwt|signature"
                           r"|(private|api|access)[-_ .]?key"
                           r"|(^|[-_ .])pass($|[-_ .])|[-_ .]pwd($|[-_ .])"
                           r"|(?-i:[a-z0-9](Pass|Pwd)(?![a-z]))", re.IGNORECASE)
_KEY_WORD = LazyPattern(r"key", re.IGNORECASE)
#: ``key`` as a word of a name (``ENCRYPTION_KEY``, ``sshKeys``; not
#: ``KEYMAP``): what an environment variable holding a key is called.
_KEY_AS_WORD = LazyPattern(r"(^|[-_ .])keys?($|[-_ .])|(?-i:[a-z0-9]Keys?(?![a-z]))",
                          re.IGNORECASE)
#: Response headers whose value is (or holds) a URL, which may carry secrets.
_URL_HEADERS = frozenset({"location", "content-location", "link", "refresh"})
#: A URL in text. It starts a word: a long run of letters is then scanned
#: once, not once per letter (which made megabytes of text quadratic).
_URL_IN_TEXT = LazyPattern(r"(?<![a-z0-9+.-])[a-z][a-z0-9+.-]*://[^\s<>\"']+", re.IGNORECASE)
#: A secret's place in free text: after LXD's (and Incus's) config error
#: ``cannot set '<name>' to '``, or after a name and its separator
#: (``name=``, ``name: ``, ``"name": ``, ``'name': ``, ``\"name\": ``). The
#: value is looked at separately (:data:`_VALUE_IN_TEXT`), so a value that
#: looks like a name (``denied: password=x``) is still seen as one. A name
#: starts a word, for the same reason as a URL.
_PAIR_IN_TEXT = LazyPattern(r"""cannot\ set\ '(?P<setting>[^']*)'\ to\ '"""
                           r"""|(?<![\w.])["']?(?P<name>[A-Za-z][\w.-]*)(?P<quoted>\\?["'])?"""
                           r"""\s*(?P<separator>[=:])\s*""", re.VERBOSE)
#: A value: quoted (a Python ``b'…'`` too, an escaped ``\"…\"`` too, an
#: unterminated one to the end), or an authorization scheme and its
#: credentials, or a word.
_VALUE_IN_TEXT = LazyPattern(r"""b?\\?"(?P<double>[^"\\]*)|b?\\?'(?P<single>[^'\\]*)"""
                            r"""|(?:Bearer|Basic|Digest|Token)\s+[^\s,;&"'}]+|[^\s,;&"'}]+""",
                            re.IGNORECASE)
#: JSON keys whose value maps innocent names to secrets: an exec operation's
#: ``fds`` (``{"0": <secret>, "control": <secret>}``, each the credential to
#: a running command's websocket) shows in its POST answer, every /wait and
#: every ``operation`` event.
_SECRET_MAPS = frozenset({"fds"})
#: An operation of this class announces the websockets to connect in its
#: ``metadata``: a migration's as ``{"control": <secret>, "fs": <secret>}``
#: (``criu`` too for a live one), each the one-time credential another
#: daemon or apitx's relay presents. They show wherever the operation does
#: (the POST answer, every /wait, every ``operation`` event), under names
#: nothing else marks as secret: so every text of such metadata is, but the
#: servers' progress figures (``fs_progress: "c1: 32.21MB (3.2MB/s)"``).
_WEBSOCKET_CLASS = "websocket"
_PROGRESS_SUFFIX = "_progress"
#: JSON keys whose object is an environment (an exec's ``environment``);
#: LXD's instance config names the same variables ``environment.<NAME>``.
_ENVIRONMENTS = frozenset({"environment"})
_ENVIRONMENT_PREFIX = "environment."
#: JSON keys whose list is a command line (an exec's ``command``).
_COMMANDS = frozenset({"command"})


def is_secret_name(name: Any) -> bool:
    """True when a JSON key names a secret.

    >>> is_secret_name('trust_token'), is_secret_name('DB_PASS'), is_secret_name('name')
    (True, True, False)
    """
    return isinstance(name, str) and (_has_secret_word(name) or name in _SECRET_MAPS)


def is_secret_header(name: str) -> bool:
    """True for a header or query parameter name that carries a secret."""
    return _has_secret_word(name) or _KEY_WORD.search(name) is not None


def _has_secret_word(name: str) -> bool:
    # Cached: a JSON tree repeats few names many times (a listing of a
    # thousand instances, the same keys each), and this was most of
    # redact(). Long names (a run of text in free text) are not kept.
    return _cached_secret_word(name) if len(name) <= 128 else \
        _SECRET_WORDS.search(name) is not None


@lru_cache(maxsize=4096)
def _cached_secret_word(name: str) -> bool:
    return _SECRET_WORDS.search(name) is not None


def is_secret_variable(name: str) -> bool:
    """True for an environment variable that carries a secret: a secret name,
    or ``key`` as one of its words.

    >>> is_secret_variable('ENCRYPTION_KEY'), is_secret_variable('KEYMAP')
    (True, False)
    """
    return is_secret_name(name) or _KEY_AS_WORD.search(name) is not None


def redact(tree: Any) -> Any:
    """A copy of a JSON tree with every secret replaced by ``<redacted>``:
    values under secret names, secret environment variables, the texts a
    websocket operation announces (a migration's ``control`` and ``fs``
    secrets), the secrets of an exec ``command`` (:func:`redact_argv`) and
    credentials inside strings
    (:func:`redact_free_text`: ``postgres://u:<redacted>@h``).

    Walks with a stack, so any depth is fine; the input is not modified.
    """
    root: List[Any] = [None]
    todo: List[Tuple[Any, Any, Any]] = [(tree, root, 0)]  # (source, parent, slot)
    # The metadata of websocket operations met so far (by id: the tree is
    # not modified while it is walked, so no id is reused meanwhile).
    announcing: Set[int] = set()
    while todo:
        source, parent, slot = todo.pop()
        if isinstance(source, dict):
            copy: Any = {}
            environment = slot in _ENVIRONMENTS
            channels = id(source) in announcing
            if source.get("class") == _WEBSOCKET_CLASS and isinstance(source.get("metadata"),
                                                                       dict):
                announcing.add(id(source["metadata"]))
            for key, value in source.items():
                # None, "" and booleans say whether a secret is set, not what it
                # is (LXD shows core.trust_password as true): keep them.
                if (_is_secret_key(key, environment) or channels and isinstance(value, str)
                        and not str(key).endswith(_PROGRESS_SUFFIX)) and not (
                        value is None or value == "" or isinstance(value, bool)):
                    copy[key] = REDACTED
                elif isinstance(value, (dict, list)):
                    copy[key] = None
                    todo.append((value, copy, key))
                else:
                    # Leaves at once, not through the stack: most of a tree is
                    # leaves, and the round trip was half of a trace's cost.
                    copy[key] = redact_free_text(value) if isinstance(value, str) else value
        elif isinstance(source, list):
            if slot in _COMMANDS and all(isinstance(arg, str) for arg in source):
                copy = redact_argv(source)
            elif _plain_texts(source):
                copy = list(source)
            else:
                copy = [None] * len(source)
                for index, value in enumerate(source):
                    if isinstance(value, (dict, list)):
                        todo.append((value, copy, index))
                    else:
                        copy[index] = redact_free_text(value) if isinstance(value, str) \
                            else value
        elif isinstance(source, str):
            copy = redact_free_text(source)
        else:
            copy = source
        parent[slot] = copy
    return root[0]


def _plain_texts(items: List[Any]) -> bool:
    """True for a list of strings none of which needs a look, in one pass
    in C: a server's lists of names (300 API extensions in a GET /1.0, a
    listing of URLs) took most of a trace's redaction one string at a time.
    A non-string item makes join() refuse: the caller then walks the list."""
    try:
        return not _may_hold_secret("\0".join(items))
    except TypeError:
        return False


def _may_hold_secret(text: str) -> bool:
    # What redact_free_text can change holds a URL's or a pair's separator,
    # or LXD's "cannot set '": text without any of them is shown as it is.
    return "=" in text or ":" in text or "cannot set '" in text


def _is_secret_key(key: Any, in_environment: bool) -> bool:
    # Cached as _has_secret_word is, one call instead of three a key: the
    # same few names come back in every answer.
    return isinstance(key, str) and (_cached_secret_key(key, in_environment) if len(key) <= 128
                                     else _secret_key(key, in_environment))


@lru_cache(maxsize=4096)
def _cached_secret_key(key: str, in_environment: bool) -> bool:
    return _secret_key(key, in_environment)


def _secret_key(key: str, in_environment: bool) -> bool:
    if key.startswith(_ENVIRONMENT_PREFIX):  # environment.PWD is the variable PWD
        return is_secret_variable(key[len(_ENVIRONMENT_PREFIX):])
    return is_secret_variable(key) if in_environment else is_secret_name(key)


def redact_headers(headers: Mapping[str, str]) -> Dict[str, str]:
    """Headers with secret ones (Authorization, Cookie, X-Auth-Token…)
    redacted, and the URLs in Location-like headers redacted as URLs."""
    return {name: REDACTED if is_secret_header(name) else
            _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), value)
            if name.lower() in _URL_HEADERS else value
            for name, value in headers.items()}


def redact_free_text(text: str) -> str:
    """Text of unknown shape (an error page, a message, a log line) with its
    credentials redacted: URLs as :func:`redact_url` does, every
    ``name=value``, ``name: value`` or ``"name": "value"`` whose name is
    secret, and LXD's ``cannot set '<secret name>' to '<value>'``.

    Words stay: ``key`` before a colon is prose (``Unknown configuration
    key: bogus.key``), and so is anything but a quoted string or a number
    after a quoted name (``cannot set 'core.trust_password': invalid type``).
    Text with nothing to redact comes back as it was, character for character.

    >>> redact_free_text('denied: password=hunter2 for https://u:p@h/x?token=t')
    'denied: password=<redacted> for https://<redacted>@h/x?token=<redacted>'
    >>> redact_free_text('Unknown configuration key: bogus.key')
    'Unknown configuration key: bogus.key'
    """
    if not _may_hold_secret(text):
        return text  # no URL, no pair: most strings of a JSON tree, at once
    text = _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)
    shown: List[str] = []
    done = 0
    for found in _PAIR_IN_TEXT.finditer(text):
        if found.start() < done:
            continue
        secret = _secret_in_pair(text, found)
        if secret is not None:
            shown += [text[done:secret[0]], REDACTED]
            done = secret[1]
    return "".join(shown) + text[done:]


def _secret_in_pair(text: str, found: Any) -> Optional[Tuple[int, int]]:
    """Where the value of a name found in free text lies, if it is a secret:
    the name is secret, and what follows is its value rather than prose."""
    setting = found.group("setting")
    if setting is not None:
        if not is_secret_name(setting):
            return None
        # "cannot set 'name' to 'value': reason", the value printed with %v.
        end = text.find("': ", found.end())
        return found.end(), end if end >= 0 else max(text.rfind("'"), found.end())
    name, separator = found.group("name"), found.group("separator")
    # "key=" is data, never prose; "configuration key: x" is prose.
    if not (is_secret_header(name) if separator == "=" else is_secret_name(name)):
        return None
    value = _VALUE_IN_TEXT.match(text, found.end())
    if value is None:
        return None
    for quoted in ("double", "single"):
        if value.group(quoted) is not None:
            return value.span(quoted)
    if found.group("quoted") and separator == ":" and not _NUMBER.match(value.group(0)):
        # A quoted name is JSON or Python syntax, whose secrets are quoted
        # strings or numbers: a word after it is a message going on
        # ("cannot set 'core.trust_password': invalid type float64").
        return None
    return value.span()


_NUMBER = LazyPattern(r"-?\d")


def redact_url(url: str) -> str:
    """A URL with its userinfo and its secret query parameters redacted; the
    URL itself, character for character, when it has neither."""
    try:
        parts = urlsplit(url)
    except ValueError:  # "http://[abc": no URL to take apart, so nothing is kept
        return f"{url.split('://', 1)[0]}://{REDACTED}" if "://" in url else REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(is_secret_header(name) for name, _ in pairs):
            query = urlencode(_redact_pairs(pairs), quote_via=quote, safe="<>")
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _redact_pairs(pairs: Iterable[Tuple[str, str]]) -> List[Tuple[str, str]]:
    return [(name, REDACTED if is_secret_header(name) else value) for name, value in pairs]


# -- command lines -------------------------------------------------------------------

class _PasswordOption(NamedTuple):
    """A program's option whose value is a password."""

    names: Tuple[str, ...]
    #: Also given as the next argument (``-p SECRET``), not only attached
    #: (``-pSECRET``, ``--user=…``).
    detached: bool
    #: The value is ``user:password``: only what follows the colon is secret.
    after_colon: bool

    def hide(self, value: str) -> str:
        if not self.after_colon:
            return REDACTED
        user, colon, password = value.partition(":")
        return f"{user}:{REDACTED}" if colon and password else value

    def read(self, arg: str) -> Optional[Tuple[str, Optional[Callable[[str], str]]]]:
        """``arg`` shown, and how to show the next argument, when ``arg`` is
        this option (``-p``, ``-pX``, ``--user=X``); else None."""
        for name in self.names:
            if arg == name:
                return arg, self.hide if self.detached else None
            attached = f"{name}=" if name.startswith("--") else name
            if arg.startswith(attached) and len(arg) > len(attached):
                return attached + self.hide(arg[len(attached):]), None
        return None


#: Programs whose option carries a password under a name that does not say
#: so. mysql's ``-pSECRET`` is attached only (``-p`` alone prompts, and the
#: next word is a database); sshpass's ``-p`` takes it either way; curl's
#: ``-u user:password``. Everywhere else ``-p`` is a port, "parents",
#: "preserve"…: not a secret.
_MYSQL_PASSWORD = _PasswordOption(("-p",), detached=False, after_colon=False)
_PASSWORD_OPTIONS: Dict[str, _PasswordOption] = {
    **{program: _MYSQL_PASSWORD for program in (
        "mysql", "mysqldump", "mysqladmin", "mysqlimport", "mysqlcheck", "mysqlshow",
        "mysqlslap", "mysqlpump", "mysqlbinlog", "mariadb", "mariadb-dump", "mariadb-admin",
        "mariadb-import", "mariadb-check", "mariadb-show", "mariadb-slap", "mariadb-binlog")},
    "sshpass": _PasswordOption(("-p",), detached=True, after_colon=False),
    "curl": _PasswordOption(("-u", "--user", "-U", "--proxy-user"), detached=True,
                            after_colon=True),
}
_LONG_FLAG = LazyPattern(r"--(?P<name>[A-Za-z][\w.-]*)")


def redact_argv(argv: Sequence[str]) -> List[str]:
    """A command line with its secrets redacted, as a new list.

    ``--password=x``, ``TOKEN=x``, URLs and ``Authorization: Bearer x``
    arguments as in free text; the argument after a flag whose name ends in
    a secret word (``--password x``, ``--api-key x``; not ``--password-file``),
    unless it is an option itself (``mysql --password -h db`` prompts); and the
    passwords of ``mysql -p…``, ``sshpass -p …`` and ``curl -u user:…``, the
    program found anywhere in the line (``sudo -u app mysql -pX``). A
    password given as a plain argument cannot be told from any other word.

    >>> redact_argv(['mysql', '-uroot', '-pS3', '--password', 'S4', 'shop'])
    ['mysql', '-uroot', '-p<redacted>', '--password', '<redacted>', 'shop']
    """
    shown: List[str] = []
    program: Optional[_PasswordOption] = None
    hide_next: Optional[Callable[[str], str]] = None
    for arg in argv:
        if hide_next is not None and not arg.startswith("-"):
            shown.append(hide_next(arg))
            hide_next = None
            continue
        program = _PASSWORD_OPTIONS.get(posixpath.basename(arg), program)
        shown_arg, hide_next = _shown_argument(arg, program)
        shown.append(shown_arg)
    return shown


def shown_command(argv: Sequence[str]) -> str:
    """A command line as one shell-quoted string, its secrets redacted: how
    messages name a command.

    >>> shown_command(['sh', '-c', 'echo hi', '--token=t'])
    "sh -c 'echo hi' '--token=<redacted>'"
    """
    import shlex  # here: only exec's messages name a command

    return shlex.join(redact_argv(argv))


def _shown_argument(arg: str, program: Optional[_PasswordOption]
                    ) -> Tuple[str, Optional[Callable[[str], str]]]:
    """An argument as shown, and how to show the next one if it is a secret."""
    option = program.read(arg) if program is not None else None
    if option is not None:
        return option
    flag = _LONG_FLAG.fullmatch(arg)
    if flag is not None and _ends_in_secret_word(flag.group("name")):
        return arg, _hide
    return redact_free_text(arg), None


def _hide(value: str) -> str:
    return REDACTED


def _ends_in_secret_word(name: str) -> bool:
    """``db-password``, ``api-key``: the last word is secret (``password-file`` is not)."""
    return any(found.end() == len(name) for found in _SECRET_WORDS.finditer(name))
