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


@pytest.mark.parametrize("items", [
    ["lxc", "https://u:pw@h/x", "vm"],            # one credential among plain names
    ["lxc", "db=postgres://app:pw@h/app"],       # a pair, the URL inside it
    ["cannot set 'trust_password' to 'pw'"],      # LXD's words, no ':' nor '='
    ["plain", 3, "https://u:pw@h/x"],             # not all strings: walked one by one
    [None, "plain", {"token": "pw"}],
], ids=["url", "pair", "cannot-set", "mixed", "nested"])
def test_lists_of_texts_are_looked_at_whole_or_item_by_item(items):
    # Lists of plain strings are passed whole after one look at their join;
    # any secret, in any place of the list, must still be found.
    shown = redact({"list": items})["list"]
    assert "pw" not in repr(shown) and REDACTED in repr(shown)
    assert len(shown) == len(items) and shown is not items


def test_a_list_of_plain_texts_is_a_copy():
    names = ["instances", "network_sriov", "projects"] * 100
    shown = redact({"api_extensions": names})["api_extensions"]
    assert shown == names and shown is not names


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


# -- server words stay readable, credentials never do (issue 16) ---------------------
#
# The texts are the real servers' own (tests/server_words.py); the planted
# secrets are the forms credentials take in messages, traces and commands.

import json  # noqa: E402

from apitx._envelope import one_line  # noqa: E402
from apitx._redact import is_secret_variable, redact_argv  # noqa: E402

from server_words import SERVER_WORDS  # noqa: E402

SERVER_TEXTS = sorted({text for texts in SERVER_WORDS.values() for text in texts.values()})


@pytest.mark.parametrize("text", SERVER_TEXTS)
def test_real_server_texts_come_out_unchanged(text):
    assert redact_free_text(text) == text
    assert one_line(text) == text


_HEX_SECRET = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
#: How credentials appear in free text, one form each; ``{}`` is the secret.
_CREDENTIALS = [
    "password={}", "password: {}", '"password": "{}"', "'passwd': '{}'", "b'passwd': b'{}'",
    '{{\\"token\\": \\"{}\\"}}',
    "token={}", "token: {}", "X-Auth-Token: {}", "Authorization: Bearer {}",
    "Authorization: Basic {}", "Cookie: session={}", "api_key={}", "X-API-Key: {}",
    "DB_PASS={}", "MYSQL_PWD={}", "PGPASSWORD={}", "--password={}",
    "https://user:{}@host/path", "postgres://app:{}@db.internal:5432/app",
    "https://host/p?secret={}&x=1", "see /1.0/operations/7f3a/websocket?secret={} here",
    "wss://10.0.0.1:8443/1.0/operations/7f3a/websocket?secret={}",
    "cannot set 'core.trust_password' to '{}': invalid",
]


@settings(max_examples=500, deadline=None)
@given(texts=st.lists(st.sampled_from(SERVER_TEXTS), min_size=1, max_size=3),
       at=st.integers(0, 3), secret=_SECRET | _HEX_SECRET,
       credential=st.sampled_from(_CREDENTIALS))
def test_server_texts_stay_readable_around_a_planted_credential(texts, at, secret, credential):
    """A message of real server words with a credential among them: every
    server word is still there, word for word, and the credential is not."""
    parts = list(texts)
    parts.insert(min(at, len(parts)), credential.format(secret))
    shown = redact_free_text(" ".join(parts))
    assert secret not in shown
    for text in texts:
        assert text in shown


@settings(max_examples=300, deadline=None)
@given(before=_FILLER, after=_FILLER, secret=_SECRET | _HEX_SECRET,
       credential=st.sampled_from(_CREDENTIALS))
def test_planted_credentials_never_come_out_of_any_text(before, after, secret, credential):
    assert secret not in redact_free_text(f"{before} {credential.format(secret)} {after}")


@pytest.mark.parametrize("text", [
    # LXD 5.0.2's config error names the key, then the reason: no credential.
    "cannot set 'core.trust_password': invalid type float64",
    # "key" is prose here (the key a user mistyped), not a credential's name.
    "Unknown configuration key: bogus.key",
    "Failed creating storage bucket key: Storage bucket not found",
    # A quoted name and prose after it is a message, not JSON.
    'Device validation failed for "password": Unsupported device type',
    # Booleans and null say whether a secret is set, not what it is.
    '{"password": true, "token": null}',
])
def test_names_and_prose_are_not_credentials(text):
    assert redact_free_text(text) == text


@pytest.mark.parametrize("text, shown", [
    ('{"pin_password": 123456, "x": 1}', '{"pin_password": <redacted>, "x": 1}'),
    ("{'password': -12.5}", "{'password': <redacted>}"),
    ('"token": "unterminated secret', '"token": "<redacted>'),
    ("cannot set 'maas.api.key' to 'k3y': not valid",
     "cannot set 'maas.api.key' to '<redacted>': not valid"),
    ("cannot set 'core.trust_password' to 'x y'",
     "cannot set 'core.trust_password' to '<redacted>'"),
    ("cannot set 'images.auto_update_interval' to 'often': invalid integer",
     "cannot set 'images.auto_update_interval' to 'often': invalid integer"),
    ("http://[abc:pw@h/x", "http://<redacted>"),
])
def test_free_text_values_of_secret_names(text, shown):
    assert redact_free_text(text) == shown


@pytest.mark.parametrize("name", ["DB_PASS", "SMTP_PASS", "pass", "MYSQL_PWD", "db_pwd",
                                  "PGPASSWORD", "dbPass", "mysqlPwd", "environment.DB_PASS"])
def test_password_abbreviations_are_secret_names(name):
    assert is_secret_name(name) and is_secret_header(name)


@pytest.mark.parametrize("name", ["PWD", "OLDPWD", "bypass", "passthrough", "compass",
                                  "PGPASSFILE", "pwd_dir"])
def test_words_that_only_contain_pass_or_pwd_are_not(name):
    assert not is_secret_name(name)


@pytest.mark.parametrize("name, secret", [
    ("ENCRYPTION_KEY", True), ("SSH_KEY", True), ("KEY", True), ("STRIPE_KEY", True),
    ("DB_PASS", True), ("GITHUB_TOKEN", True),
    ("KEYMAP", False), ("MONKEY", False), ("HOME", False), ("PWD", False), ("TERM", False),
])
def test_environment_names(name, secret):
    # An environment variable named *_KEY holds a key: in an environment
    # (exec's, or instance config's environment.*) "key" is a secret word.
    assert is_secret_variable(name) is secret


def test_exec_body_command_environment_and_values_are_redacted():
    body = {"command": ["mysql", "-uroot", "-pS3CR3T-1", "--password", "S3CR3T-2", "shop"],
            "environment": {"DB_PASS": "S3CR3T-3", "ENCRYPTION_KEY": "S3CR3T-4",
                            "DATABASE_URL": "postgres://app:S3CR3T-5@db/app", "HOME": "/root"},
            "wait-for-websocket": True, "interactive": False, "cwd": "/srv"}
    shown = redact(body)
    assert "S3CR3T" not in json.dumps(shown)
    assert shown["command"] == ["mysql", "-uroot", "-p<redacted>", "--password", "<redacted>",
                                "shop"]
    assert shown["environment"] == {"DB_PASS": REDACTED, "ENCRYPTION_KEY": REDACTED,
                                    "DATABASE_URL": "postgres://<redacted>@db/app",
                                    "HOME": "/root"}
    assert body["command"][2] == "-pS3CR3T-1"  # the caller's data is not touched


def test_instance_config_environment_keys_and_url_values():
    config = {"environment.STRIPE_KEY": "sk-1", "environment.LANG": "C.UTF-8",
              "environment.PWD": "/srv",
              "user.db": "mysql://u:pw-2@db/x", "user.note": "Unknown configuration key: x",
              "volatile.base_image": "ff63" * 16}
    shown = redact({"config": config})["config"]
    assert shown == {"environment.STRIPE_KEY": REDACTED, "environment.LANG": "C.UTF-8",
                     "environment.PWD": "/srv",
                     "user.db": "mysql://<redacted>@db/x",
                     "user.note": "Unknown configuration key: x",
                     "volatile.base_image": "ff63" * 16}


@pytest.mark.parametrize("argv, shown", [
    (["sh", "-c", "echo hi"], ["sh", "-c", "echo hi"]),
    (["app", "--password=pw1", "--token", "tok2", "--db-password", "pw3", "-v"],
     ["app", "--password=<redacted>", "--token", "<redacted>", "--db-password", "<redacted>",
      "-v"]),
    # A flag with no value of its own (mysql prompts): the next option is not a value.
    (["mysql", "--password", "-h", "db"], ["mysql", "--password", "-h", "db"]),
    # --password-file names a file, not a password.
    (["app", "--password-file", "/run/pw"], ["app", "--password-file", "/run/pw"]),
    (["env", "TOKEN=t1", "DB_PASS=t2", "LANG=C", "app"],
     ["env", "TOKEN=<redacted>", "DB_PASS=<redacted>", "LANG=C", "app"]),
    # mysql's -pSECRET (attached only: "-p db" prompts, and db is a database).
    (["mysql", "-uroot", "-pS3", "shop"], ["mysql", "-uroot", "-p<redacted>", "shop"]),
    (["mysql", "-p", "shop"], ["mysql", "-p", "shop"]),
    (["sudo", "-u", "app", "/usr/bin/mariadb-dump", "-pS3"],
     ["sudo", "-u", "app", "/usr/bin/mariadb-dump", "-p<redacted>"]),
    # -p means port, preserve, parents elsewhere.
    (["ssh", "-p", "22", "h"], ["ssh", "-p", "22", "h"]),
    (["mkdir", "-p", "/a"], ["mkdir", "-p", "/a"]),
    (["sshpass", "-p", "S3", "ssh", "h"], ["sshpass", "-p", "<redacted>", "ssh", "h"]),
    (["sshpass", "-pS3", "ssh", "h"], ["sshpass", "-p<redacted>", "ssh", "h"]),
    # curl's user:password (the user stays readable).
    (["curl", "-u", "bob:S3", "https://h"], ["curl", "-u", "bob:<redacted>", "https://h"]),
    (["curl", "--user", "bob:S3", "-H", "Authorization: Bearer S4", "https://a:S5@h/?token=S6"],
     ["curl", "--user", "bob:<redacted>", "-H", "Authorization: <redacted>",
      "https://<redacted>@h/?token=<redacted>"]),
    (["curl", "-u", "bob", "https://h"], ["curl", "-u", "bob", "https://h"]),
    (["sh", "-c", "PASSWORD=S3 ./run --token=S4"],
     ["sh", "-c", "PASSWORD=<redacted> ./run --token=<redacted>"]),
])
def test_redact_argv(argv, shown):
    assert redact_argv(argv) == shown


# -- live: the servers' words reach the caller unchanged -----------------------------
#
# Each request fails on both servers without changing anything (a profile
# of the test's own, names that do not exist); the recorded text must still
# be what the server says, and apitx's exception must carry it word for word.

import uuid  # noqa: E402

import apitx  # noqa: E402

_BOGUS_KEY = {"config": {"user.x": "1", "bogus.key": "v"}}
_BAD_DISK = {"devices": {"d": {"type": "disk", "path": "/mnt", "source": "/nonexistent-apitx",
                               "bogus": "x"}}}
_FAILING_REQUESTS = {
    'PATCH /1.0/profiles/<new> {"config": {"user.x": "1", "bogus.key": "v"}}':
        lambda api, new: api.patch(f"profiles/{new}", json=_BOGUS_KEY),
    'PATCH /1.0/profiles/<new> {"config": {"limits.memory": "lots"}}':
        lambda api, new: api.patch(f"profiles/{new}", json={"config": {"limits.memory": "lots"}}),
    'PATCH /1.0/profiles/<new> {"devices": {"d": {"type": "disk", "path": "/mnt", "source": '
    '"/nonexistent-apitx", "bogus": "x"}}}':
        lambda api, new: api.patch(f"profiles/{new}", json=_BAD_DISK),
    'POST /1.0/storage-pools/default/buckets/no-such-apitx/keys {"name": "k", "role": "admin"}':
        lambda api, new: api.post("storage-pools/default/buckets/no-such-apitx/keys",
                                  json={"name": "k", "role": "admin"}),
    'POST /1.0/profiles {"name": "bad/name"}':
        lambda api, new: api.post("profiles", json={"name": "bad/name"}),
    'GET /1.0/instances/no-such-apitx': lambda api, new: api.get("instances/no-such-apitx"),
    'GET /1.0/images/0123456789abcdef': lambda api, new: api.get("images/0123456789abcdef"),
    'GET /1.0/storage-pools/default/volumes/custom/no-such-apitx':
        lambda api, new: api.get("storage-pools/default/volumes/custom/no-such-apitx"),
}


@pytest.fixture
def profile(api):
    """A profile of the test's own, deleted afterwards whatever happens."""
    name = f"apitx-{uuid.uuid4().hex[:10]}"
    api.post("profiles", json={"name": name})
    yield name
    api.delete(f"profiles/{name}", validate=False)


@pytest.mark.live
@pytest.mark.parametrize("request_key", list(_FAILING_REQUESTS))
def test_server_words_reach_the_caller_unchanged(server, api, profile, request_key):
    said = SERVER_WORDS[server.name][request_key]
    with pytest.raises(apitx.APIException) as caught:
        _FAILING_REQUESTS[request_key](api, profile)
    assert caught.value.error == said
    assert str(caught.value).endswith(f": {said}")
    assert json.dumps(said, ensure_ascii=False) in caught.value.transaction  # the JSON trace


@pytest.mark.live
def test_a_mistyped_instance_key_is_named(server, api, instance):
    with pytest.raises(apitx.APIException) as caught:
        api.patch(f"instances/{instance}", json=_BOGUS_KEY)
    said = SERVER_WORDS[server.name][
        'PATCH /1.0/instances/<new> {"config": {"user.x": "1", "bogus.key": "v"}}']
    assert said == "Invalid config: Unknown configuration key: bogus.key"
    assert caught.value.error == said and str(caught.value).endswith(f": {said}")


# -- exec results and errors name the command without its secrets --------------------

from apitx._exec import ExecResult  # noqa: E402

_SECRET_COMMAND = ["mysql", "-uroot", "-pS3CR3T-1", "--password", "S3CR3T-2",
                   "TOKEN=S3CR3T-3", "https://u:S3CR3T-4@h/x", "shop"]


def test_exec_result_repr_hides_the_commands_secrets_and_keeps_the_list():
    result = ExecResult("c1", list(_SECRET_COMMAND), 1, b"out", b"no such table\n")
    shown = repr(result)
    assert "S3CR3T" not in shown
    assert shown == ("ExecResult(instance='c1', command=['mysql', '-uroot', '-p<redacted>', "
                     "'--password', '<redacted>', 'TOKEN=<redacted>', 'https://<redacted>@h/x', "
                     "'shop'], return_code=1, stdout=b'out', stderr=b'no such table\\n')")
    assert result.command == _SECRET_COMMAND  # the real list, to run again


def test_exec_error_names_the_command_without_its_secrets():
    with pytest.raises(apitx.ExecError) as caught:
        ExecResult("c1", list(_SECRET_COMMAND), 1, b"", b"no such table\n").check()
    assert "S3CR3T" not in str(caught.value) and "S3CR3T" not in repr(caught.value)
    assert str(caught.value) == ("mysql -uroot '-p<redacted>' --password '<redacted>' "
                                 "'TOKEN=<redacted>' 'https://<redacted>@h/x' shop in c1 "
                                 "exited with 1: no such table")
    assert caught.value.command == _SECRET_COMMAND


def test_a_migrations_websocket_secrets_are_redacted_and_its_progress_kept():
    # The answer to POST /1.0/instances/<n> {"migration": true} on LXD 5.0.2
    # (recorded, secrets replaced), and the same operation as a /wait shows
    # it mid-copy: the channel names are no secret words, the values are.
    control, fs = "18820" * 12 + "8882", "d1f44" * 12 + "e245"
    answer = {"type": "async", "status_code": 100,
              "operation": "/1.0/operations/3fabbfe4",
              "metadata": {"id": "3fabbfe4", "class": "websocket",
                           "description": "Migrating instance", "status": "Running",
                           "resources": {"instances": ["/1.0/instances/c1"]},
                           "metadata": {"control": control, "fs": fs,
                                        "fs_progress": "c1: 32.21MB (32.21MB/s)"},
                           "may_cancel": True, "err": ""}}
    shown = redact(answer)
    assert shown["metadata"]["metadata"] == {"control": REDACTED, "fs": REDACTED,
                                             "fs_progress": "c1: 32.21MB (32.21MB/s)"}
    assert shown["metadata"]["description"] == "Migrating instance"
    # An operation event carries the same operation one level down.
    event = {"type": "operation", "metadata": answer["metadata"]}
    assert redact(event)["metadata"]["metadata"]["fs"] == REDACTED
    # Another class's metadata is only redacted by its names.
    task = {"class": "task", "metadata": {"fs": "default", "fs_progress": "1MB"}}
    assert redact(task) == task
