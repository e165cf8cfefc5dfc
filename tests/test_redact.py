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
