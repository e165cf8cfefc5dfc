"""apitx._redact: which names are secret, and redaction that never mutates."""

import copy

import pytest

from apitx._redact import (REDACTED, is_secret_header, is_secret_name, redact, redact_headers,
                           redact_url)


@pytest.mark.parametrize("name", ["password", "core.trust_password", "Passwd", "secret",
                                  "client_secret", "token", "trust_token", "X-Auth-Token",
                                  "private_key", "privateKey", "private-key", "cookie"])
def test_secret_names(name):
    assert is_secret_name(name)
    assert is_secret_header(name)


@pytest.mark.parametrize("name", ["name", "key", "keys", "description", "fingerprint",
                                  "certificate", "monkey_business", 3, None])
def test_not_secret_json_names(name):
    assert not is_secret_name(name)


@pytest.mark.parametrize("name", ["X-API-Key", "api_key", "Authorization",
                                  "Proxy-Authorization", "Set-Cookie"])
def test_secret_header_names(name):
    assert is_secret_header(name)


def test_redact_nested_tree_without_mutating_it():
    tree = {"config": {"core.trust_password": "hunter2", "core.https_address": ":8443"},
            "certificates": [{"name": "c", "trust_token": "tok", "key": "public"}],
            "private_key": {"pem": "----"},
            "password_set": True, "token": None}
    before = copy.deepcopy(tree)
    shown = redact(tree)
    assert tree == before
    assert shown == {"config": {"core.trust_password": REDACTED, "core.https_address": ":8443"},
                     "certificates": [{"name": "c", "trust_token": REDACTED, "key": "public"}],
                     "private_key": REDACTED, "password_set": True, "token": None}


def test_redact_any_depth():
    tree = leaf = {}
    for _ in range(5000):
        leaf["next"] = {}
        leaf = leaf["next"]
    leaf["secret"] = "s3"
    shown = redact(tree)
    for _ in range(5000):
        shown = shown["next"]
    assert shown == {"secret": REDACTED}


def test_redact_headers():
    assert redact_headers({"Authorization": "Bearer x", "X-API-Key": "k",
                           "Content-Type": "application/json"}) == {
        "Authorization": REDACTED, "X-API-Key": REDACTED, "Content-Type": "application/json"}


@pytest.mark.parametrize("url, shown", [
    ("/1.0/instances?recursion=1", "/1.0/instances?recursion=1"),
    ("/1.0/x?secret=s3&name=a%20b", "/1.0/x?secret=<redacted>&name=a%20b"),
    ("https://user:pw@h:8443/1.0?token=t", "https://<redacted>@h:8443/1.0?token=<redacted>"),
])
def test_redact_url(url, shown):
    assert redact_url(url) == shown


# -- names the real world uses, headers that carry URLs, free text (issue 12) ---------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from apitx._redact import redact_free_text  # noqa: E402


@pytest.mark.parametrize("name", ["passphrase", "credentials", "sessionid", "session_id",
                                  "csrf_token", "X-XSRF-TOKEN", "jwt", "signature", "apiKey",
                                  "access_key", "AWS_ACCESS_KEY"])
def test_secret_names_of_the_wider_world(name):
    assert is_secret_name(name) and is_secret_header(name)


@pytest.mark.parametrize("name", ["session_count", "keyboard", "description", "api_version"])
def test_names_that_only_look_secret_in_json(name):
    assert not is_secret_name(name)


def test_urls_in_location_like_headers_are_redacted():
    shown = redact_headers({"Location": "https://u:pw@h/x?token=t&a=1",
                            "Link": '<https://h/n?secret=s>; rel="next"', "Server": "x?token=t"})
    assert shown["Location"] == "https://<redacted>@h/x?token=<redacted>&a=1"
    assert shown["Link"] == '<https://h/n?secret=<redacted>>; rel="next"'
    assert shown["Server"] == "x?token=t"  # not a URL header: left as it is


@pytest.mark.parametrize("text, shown", [
    ("denied: password=hunter2", "denied: password=<redacted>"),
    ('{"token": "abc", "detail": "no"}', '{"token": "<redacted>", "detail": "no"}'),
    ("Authorization: Bearer abc.def", "Authorization: <redacted>"),
    ("see https://u:p@h/x?api_key=k", "see https://<redacted>@h/x?api_key=<redacted>"),
    ("name=web status: Running", "name=web status: Running"),
])
def test_free_text(text, shown):
    assert redact_free_text(text) == shown


_SECRET = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ23456789", min_size=6, max_size=20).map(
    lambda s: "S3CR3T" + s)
_FILLER = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
_PLANTINGS = [
    "password={}", "password: {}", '"password": "{}"', "token={}", "X-Auth-Token: {}",
    "Authorization: Bearer {}", "https://user:{}@host/path", "https://host/p?secret={}&x=1",
    "api_key={}", "'passwd': '{}'",
]


@settings(max_examples=300, deadline=None)
@given(before=_FILLER, after=_FILLER, secret=_SECRET, planting=st.sampled_from(_PLANTINGS))
def test_planted_secrets_never_come_out_of_free_text(before, after, secret, planting):
    # Separated from the filler by spaces, as in any message: the filler is
    # arbitrary text (quotes, colons, other pairs), the secret must go.
    assert secret not in redact_free_text(f"{before} {planting.format(secret)} {after}")
