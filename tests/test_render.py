"""apitx._render: what people and machines see of a transaction.

Golden outputs come from replaying cassettes/lifecycle.yaml with tracing on
(sequence numbers and timings masked); ``pytest --update-golden`` rewrites
them after a deliberate change, to be reviewed in the diff.
"""

import json
import logging
import os
import re
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import apitx
from apitx import Endpoint
from apitx._curl import render_curl
from apitx._render import (STREAMED, Exchange, RenderOptions, indented_json, render_body,
                           render_json, render_text)

from test_testing import scenario_lifecycle

GOLDEN = os.path.join(os.path.dirname(__file__), "golden")
UNIX = Endpoint.parse("/var/lib/lxd/unix.socket")
SAFE = RenderOptions()
UNSAFE = RenderOptions(unsafe=True)


def mask(text: str) -> str:
    """Sequence numbers and timings differ at every run."""
    text = re.sub(r"^#\d+ ", "#N ", text, flags=re.MULTILINE)
    text = re.sub(r"\d+\.\d ms", "T ms", text)
    text = re.sub(r'"seq": \d+', '"seq": N', text)
    return re.sub(r'"(elapsed|waited)_ms": [\d.]+', r'"\1_ms": T', text)


def traced_lifecycle(cassette, caplog, monkeypatch, trace_format: str) -> str:
    monkeypatch.setenv("APITX_DEBUG", trace_format)
    context, socket_path = cassette("lifecycle.yaml")
    api = apitx.API.factory(socket_path, debug=True)
    with context, caplog.at_level(logging.DEBUG, logger="apitx"):
        scenario_lifecycle(api)
    text = "\n".join(record.getMessage() for record in caplog.records)
    return mask(text.replace(socket_path, "/var/lib/lxd/unix.socket")) + "\n"


@pytest.mark.parametrize("trace_format", ["text", "json", "curl"])
def test_golden_lifecycle(cassette, caplog, monkeypatch, request, trace_format):
    got = traced_lifecycle(cassette, caplog, monkeypatch, trace_format)
    path = os.path.join(GOLDEN, f"lifecycle.{trace_format}")
    if request.config.getoption("--update-golden") or request.config.getoption("--record"):
        os.makedirs(GOLDEN, exist_ok=True)
        with open(path, "w", encoding="utf-8") as golden:
            golden.write(got)
    with open(path, encoding="utf-8") as golden:
        assert got == golden.read()


def test_json_format_is_one_object_per_line(cassette, caplog, monkeypatch):
    lines = traced_lifecycle(cassette, caplog, monkeypatch, "json").splitlines()
    records = [json.loads(line.replace('"seq": N', '"seq": 0').replace(": T", ": 0"))
               for line in lines]
    assert len(records) == 15
    assert records[0]["method"] == "GET" and records[0]["path"] == "/1.0"
    assert records[1]["response"]["status"] == 404
    assert records[1]["response"]["body"]["error"] == "Instance not found"


def exchange(**fields) -> Exchange:
    base = dict(endpoint=UNIX, method="POST", url="http+unix://lxd/1.0/instances",
                status=200, reason="OK")
    return Exchange(**{**base, **fields})


def test_text_layout():
    shown = render_text(exchange(
        seq=7, elapsed=0.0123, waited=2.5,
        request_headers={"User-Agent": apitx_user_agent(), "Content-Type": "application/json",
                         "Content-Length": "13"},
        request_body=b'{"name": "c1"}', response_headers={"Content-Type": "application/json"},
        response_body=b'{"type": "sync", "metadata": {"b": 1, "a": 2}}'), SAFE)
    assert shown == "\n".join([
        "#7 unix:/var/lib/lxd/unix.socket POST /1.0/instances 12.3 ms "
        "(waited 2500.0 ms in total)",
        "Content-Type: application/json",
        '{\n    "name": "c1"\n}',
        "HTTP/200 OK",
        '{\n    "type": "sync",\n    "metadata": {\n        "b": 1,\n        "a": 2\n    }\n}',
        "-" * 72])


def apitx_user_agent():
    import requests
    return requests.utils.default_headers()["User-Agent"]


@pytest.mark.parametrize("body, content_type, shown", [
    (None, "", ""),
    (b"", "application/json", ""),
    (bytes(range(256)), "application/octet-stream", "<binary 256 bytes, application/octet-stream>"),
    (b"\xff\xfe\x00", "", "<binary 3 bytes, no content type>"),
    (b"\xff\xfe\x00", "text/plain", "<binary 3 bytes, text/plain>"),
    (b"hello", "text/plain; charset=utf-8", "hello"),
    ("caf\u00e9", "", "caf\u00e9"),
    (iter([b"x"]), "", STREAMED),
    (b'{"password": "x", "a": [1]}', "application/json",
     '{\n    "password": "<redacted>",\n    "a": [\n        1\n    ]\n}'),
    (b"user=a&password=b", "application/x-www-form-urlencoded", "user=a&password=%3Credacted%3E"),
])
def test_body_rules(body, content_type, shown):
    assert render_body(body, content_type, SAFE) == shown


def test_file_bodies_are_not_read(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"data")
    with open(path, "rb") as stream:
        assert render_body(stream, "", SAFE) == STREAMED
        assert stream.tell() == 0


def test_truncation_counts_bytes_on_the_wire():
    body = ("é" * 100).encode()  # 200 bytes
    shown = render_body(body, "text/plain", RenderOptions(max_body=11))
    assert shown == "é" * 5 + "…[truncated, 200 bytes total]"


def test_streamed_response_is_not_read():
    assert "HTTP/200 OK\n" + STREAMED in render_text(exchange(response_body=None), SAFE)


PLANTED = "PLANTED-SECRET-7f3a"


def planted_exchange() -> Exchange:
    return exchange(
        url=f"http+unix://lxd/1.0/x?token={PLANTED}&name=ok",
        request_headers={"Authorization": f"Bearer {PLANTED}", "X-API-Key": PLANTED,
                         "Cookie": f"s={PLANTED}", "Content-Type": "application/json"},
        request_body=json.dumps({"a": {"password": PLANTED, "l": [{"trust_token": PLANTED}]},
                                 "config": {"core.trust_password": PLANTED}}).encode(),
        response_headers={"Set-Cookie": f"s={PLANTED}", "Content-Type": "application/json"},
        response_body=json.dumps({"metadata": {"private_key": PLANTED}}).encode())


RENDERERS = [render_text, render_json, render_curl]


@pytest.mark.parametrize("render", RENDERERS)
def test_planted_secrets_never_shown(render):
    assert PLANTED not in render(planted_exchange(), SAFE)
    assert "<redacted>" in render(planted_exchange(), SAFE)


@pytest.mark.parametrize("render", RENDERERS)
def test_unsafe_shows_them(render):
    assert PLANTED in render(planted_exchange(), UNSAFE)


def exec_exchange() -> Exchange:
    """An exec started with secrets in its command line, its environment and
    a URL, answered with the operation and its websocket secrets (issue 16)."""
    body = {"command": ["mysql", "-uroot", f"-p{PLANTED}", "--password", PLANTED,
                        f"TOKEN={PLANTED}", f"postgres://app:{PLANTED}@db/shop", "shop"],
            "environment": {"DB_PASS": PLANTED, "MYSQL_PWD": PLANTED, "PGPASSWORD": PLANTED,
                            "ENCRYPTION_KEY": PLANTED, "HOME": "/root",
                            "DATABASE_URL": f"postgres://app:{PLANTED}@db/shop"},
            "wait-for-websocket": True, "interactive": False}
    answer = {"type": "async", "status_code": 100, "operation": "/1.0/operations/7f3a",
              "metadata": {"id": "7f3a", "metadata": {"fds": {"0": PLANTED, "control": PLANTED}},
                           "err": f"see /1.0/operations/7f3a/websocket?secret={PLANTED}"}}
    return exchange(url="http+unix://lxd/1.0/instances/c1/exec",
                    request_headers={"Content-Type": "application/json"},
                    request_body=json.dumps(body).encode(),
                    response_headers={"Content-Type": "application/json"},
                    response_body=json.dumps(answer).encode())


@pytest.mark.parametrize("render", RENDERERS)
def test_exec_secrets_never_shown_and_the_rest_readable(render):
    shown = render(exec_exchange(), SAFE)
    assert PLANTED not in shown
    for readable in ("mysql", "-uroot", "-p<redacted>", "--password", "TOKEN=<redacted>",
                     "postgres://<redacted>@db/shop", "DB_PASS", "/root", "shop"):
        assert readable in shown
    assert PLANTED in render(exec_exchange(), UNSAFE)


@pytest.mark.parametrize("render", RENDERERS)
def test_credentials_in_form_values_never_shown(render):
    shown = render(exchange(request_headers={"Content-Type": "application/x-www-form-urlencoded"},
                            request_body=f"db=postgres://u:{PLANTED}@h/x&name=web".encode()),
                   SAFE)
    assert PLANTED not in shown and "name=web" in shown


# -- property: renderers never raise and never leak ---------------------------------

json_leaves = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_trees = st.recursive(json_leaves, lambda children: st.lists(children, max_size=4)
                          | st.dictionaries(st.text(max_size=8), children, max_size=4),
                          max_leaves=30)
# -- indented_json is json.dumps(indent=4), faster ---------------------------------

#: What json.loads makes, NaN and infinities included (LXD never sends them;
#: json.loads accepts them), and big and negative numbers.
parsed_leaves = json_leaves | st.floats() | st.sampled_from([float("inf"), -0.0, 10 ** 30])
parsed_trees = st.recursive(parsed_leaves, lambda children: st.lists(children, max_size=5)
                            | st.lists(st.text(max_size=6), max_size=5)
                            | st.dictionaries(st.text(max_size=8), children, max_size=5),
                            max_leaves=40)


@settings(max_examples=500, deadline=None)
@given(tree=parsed_trees)
def test_indented_json_writes_what_json_dumps_writes(tree):
    assert indented_json(tree) == json.dumps(tree, indent=4, ensure_ascii=False)


@pytest.mark.parametrize("tree", [(1, [2]), {1: "int key"}, {"a": {None: 1}}, [object()]],
                         ids=["tuple", "int-key", "none-key", "object"])
def test_indented_json_leaves_what_json_loads_never_makes_to_json_dumps(tree):
    try:
        expected = json.dumps(tree, indent=4, ensure_ascii=False)
    except TypeError as error:
        with pytest.raises(TypeError, match=str(error)):
            indented_json(tree)
    else:
        assert indented_json(tree) == expected

secret_keys = st.sampled_from(["password", "trust_token", "client_secret", "private_key",
                               "core.trust_password", "Token", "DB_PASS", "MYSQL_PWD"])
#: Secrets that no key names: in a URL, a command line, an environment.
nameless_secrets = st.sampled_from([
    {"dsn": f"postgres://app:{PLANTED}@db/app"},
    {"url": f"/1.0/operations/7f3a/websocket?secret={PLANTED}"},
    {"command": ["mysql", f"-p{PLANTED}"]}, {"command": ["app", "--token", PLANTED]},
    {"environment": {"ENCRYPTION_KEY": PLANTED}}, {"environment.STRIPE_KEY": PLANTED},
])


@st.composite
def planted_trees(draw):
    """A JSON tree with PLANTED under a secret key, or in a value, somewhere inside."""
    tree = draw(st.builds(lambda key: {key: PLANTED}, secret_keys) | nameless_secrets)
    for _ in range(draw(st.integers(0, 4))):
        other = draw(json_trees)
        tree = (draw(st.sampled_from(["dict", "list"])) == "dict"
                and {draw(st.text(max_size=6).filter(lambda k: k not in ("",))): tree,
                     "x": other} or [other, tree])
    return tree


headers = st.dictionaries(st.text(max_size=20), st.text(max_size=40), max_size=5)
content_types = st.sampled_from(["", "application/json", "text/plain", "application/octet-stream",
                                 "text/html; charset=utf-8", "application/x-www-form-urlencoded"])


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(request_body=st.binary(max_size=300) | planted_trees().map(lambda t: json.dumps(t).encode()),
       response_body=st.none() | st.binary(max_size=300)
       | planted_trees().map(lambda t: json.dumps(t).encode()),
       request_headers=headers, response_headers=headers,
       request_type=content_types, response_type=content_types,
       secret_header=st.sampled_from(["Authorization", "Cookie", "X-Auth-Token", "X-API-Key",
                                      "Proxy-Authorization", "X-Password"]),
       status=st.integers(100, 599), max_body=st.integers(1, 500))
def test_renderers_never_raise_and_never_leak(request_body, response_body, request_headers,
                                              response_headers, request_type, response_type,
                                              secret_header, status, max_body):
    request_headers = {**request_headers, secret_header: PLANTED, "Content-Type": request_type}
    response_headers = {**response_headers, "Set-Cookie": PLANTED, "Content-Type": response_type}
    planted = exchange(url=f"http+unix://lxd/1.0/x?api_key={PLANTED}", status=status,
                       request_headers=request_headers, request_body=request_body,
                       response_headers=response_headers, response_body=response_body)
    options = RenderOptions(max_body=max_body)
    for render in RENDERERS:
        shown = render(planted, options)
        assert isinstance(shown, str)
        assert PLANTED not in shown


@pytest.mark.parametrize("body, shown", [
    (bytes(70_000), "--data-binary '@<binary body, 70000 bytes, not shown>'"),
    (iter([b"x"]), "--data-binary '@<streamed body, not shown>'"),
])
def test_curl_in_traces_never_raises_on_bodies_it_cannot_inline(body, shown):
    assert shown in render_curl(exchange(request_body=body), SAFE)


@settings(max_examples=60, deadline=None)
@given(body=st.binary(min_size=1, max_size=400).filter(
    lambda b: b"\0" in b or not _is_utf8(b)))
def test_binary_bodies_are_piped_from_printf_byte_for_byte(body):
    line = render_curl(exchange(request_body=body), SAFE)
    assert line.startswith("printf ") and " | curl " in line and "--data-binary @-" in line
    printed = subprocess.run(line.split(" | curl ", 1)[0], shell=True, capture_output=True,
                             timeout=10, check=True).stdout
    assert printed == body


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def test_curl_keeps_the_body_byte_for_byte_when_nothing_is_secret():
    body = b'{"b":1,  "a":[2]}'
    assert "--data-binary '{\"b\":1,  \"a\":[2]}'" in render_curl(
        exchange(request_body=body, request_headers={"Content-Type": "application/json"}), SAFE)


@settings(max_examples=300, deadline=None)
@given(body=st.text(min_size=1).filter(lambda t: "\x00" not in t),
       header=st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), max_size=30))
def test_curl_quoting_survives_the_shell_for_any_body(body, header):
    """What the shell hands curl is exactly the body and header that were sent."""
    import shlex
    line = render_curl(exchange(request_body=body.encode("utf-8", "surrogatepass"),
                                request_headers={"X-Note": header, "Content-Type": "text/plain"}),
                       RenderOptions(unsafe=True))
    words = shlex.split(line)
    assert words[words.index("--data-binary") + 1] == body
    assert f"X-Note: {header}" in words
