"""apitx._sender: the request apitx prepares is the request requests would prepare.

``prepared_request()`` skips requests' merges of a request's settings with
the session's when they would change nothing (a speed-up, see its docstring).
Here every kind of session that adds something, and every kind of argument,
is prepared both ways and the two requests compared field by field: a
session setting the shortcut forgot would show up as a missing cookie,
header, query pair or hook.
"""

from collections.abc import Mapping
from typing import Any, Callable, Dict, Iterator, List, Tuple

import pytest
import requests

from apitx import API
from apitx._sender import prepared_request

URL = "http+unix://lxd/1.0/instances"


class PairsMapping(Mapping):  # type: ignore[type-arg]
    """A multi-dict: ``items()`` gives a name twice, as multidict's do."""

    def __init__(self, pairs: List[Tuple[str, str]]) -> None:
        self.pairs = pairs

    def __getitem__(self, name: str) -> str:
        return [value for each, value in self.pairs if each == name][-1]

    def __iter__(self) -> Iterator[str]:
        return iter(name for name, _ in self.pairs)

    def __len__(self) -> int:
        return len(self.pairs)

    def items(self) -> Any:
        return list(self.pairs)


def a_hook(response: requests.Response, **kwargs: Any) -> None:
    """A response hook (never called here: nothing is sent)."""


def plain() -> requests.Session:
    """The session API.factory() makes for a Unix socket."""
    return API.factory("/var/lib/lxd/unix.socket").session


def with_cookie() -> requests.Session:
    session = plain()
    session.cookies.set("sid", "s3", domain="lxd", path="/")
    return session


def with_auth() -> requests.Session:
    session = plain()
    session.auth = ("user", "pw")
    return session


def with_params() -> requests.Session:
    session = plain()
    session.params = {"project": "p1"}
    return session


def with_hook() -> requests.Session:
    session = plain()
    session.hooks["response"].append(a_hook)
    return session


def with_header_removed() -> requests.Session:
    session = plain()
    session.headers["Accept-Encoding"] = None  # type: ignore[assignment]
    return session


def reading_netrc() -> requests.Session:
    """A session that reads the environment (requests' default): its
    credentials for host ``lxd`` come from the NETRC file (see the test)."""
    session = plain()
    session.trust_env = True
    return session


SESSIONS: Dict[str, Callable[[], requests.Session]] = {
    "plain": plain, "cookie": with_cookie, "auth": with_auth, "params": with_params,
    "hook": with_hook, "header-removed": with_header_removed, "netrc": reading_netrc,
}

ARGUMENTS: Dict[str, Dict[str, Any]] = {
    "nothing": {},
    "dict-params": {"params": {"recursion": 1, "filter": None, "x": ["a", "b"]}},
    "pair-params": {"params": [("project", "p2"), ("target", "m1"), ("project", "p3")]},
    "text-params": {"params": "recursion=2"},
    "multi-dict-params": {"params": PairsMapping([("a", "1"), ("a", "2")])},
    "json": {"method": "POST", "json": {"name": "c1", "config": {"limits.cpu": "1"}}},
    "bytes": {"method": "PUT", "data": b"\x00raw"},
    "form": {"method": "POST", "data": {"k": "v"}},
    "headers": {"headers": {"X-LXD-type": "file"}},
    "header-removed-by-request": {"headers": {"Accept": None}},
    "lowercase-method": {"method": "delete"},
}


def as_sent(prepared: requests.PreparedRequest) -> Dict[str, Any]:
    """Everything of a prepared request that reaches the wire or the hooks."""
    return {
        "method": prepared.method, "url": prepared.url,
        "headers": list(prepared.headers.items()), "body": prepared.body,
        "hooks": prepared.hooks, "body_position": prepared._body_position,
        "cookies": sorted((c.name, c.value) for c in prepared._cookies),  # type: ignore[attr-defined]
    }


@pytest.mark.parametrize("arguments", list(ARGUMENTS), ids=list(ARGUMENTS))
@pytest.mark.parametrize("kind", list(SESSIONS), ids=list(SESSIONS))
def test_a_request_is_prepared_as_the_session_prepares_it(kind, arguments, tmp_path,
                                                          monkeypatch):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine lxd login netrc-user password netrc-pw\n")
    monkeypatch.setenv("NETRC", str(netrc))
    given = dict(ARGUMENTS[arguments])
    method = given.pop("method", "GET")
    session = SESSIONS[kind]()

    ours = as_sent(prepared_request(session, method, URL, **given))
    theirs = as_sent(session.prepare_request(requests.Request(method, URL, **given)))

    assert ours == theirs


def test_what_each_session_adds_is_in_the_request(tmp_path, monkeypatch):
    """The comparison above can fail: each session kind changes what
    requests prepares, so a shortcut that ignored it would differ."""
    netrc = tmp_path / "netrc"
    netrc.write_text("machine lxd login netrc-user password netrc-pw\n")
    monkeypatch.setenv("NETRC", str(netrc))
    bare = as_sent(plain().prepare_request(requests.Request("GET", URL)))
    for kind, make in SESSIONS.items():
        if kind != "plain":
            assert as_sent(make().prepare_request(requests.Request("GET", URL))) != bare, kind
