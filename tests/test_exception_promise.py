"""The promise of apitx/_exceptions.py: "every error apitx raises, and nothing else".

A walk over the public API (``apitx.__all__``, ``apitx.ensure``,
``apitx.testing``): each call is made once with arguments that work, then
once per parameter with each of a set of bad values in its place (None where
a str is needed, ints, NaN, negative numbers, relative paths, empty strings,
CR/LF, objects of no use). Whatever a call raises must be an
:class:`apitx.APITXError`, so ``except apitx.APITXError`` catches every
failure; a caller's mistake is a ``RequestError``/``RequestTypeError`` (or
``SettingsError``/``EndpointError``), still a ``ValueError``/``TypeError``.

Calls go to a MockTransport API that plays a small LXD (:func:`lxd`): no
server is needed. Every escape the walk finds is listed at once, by call,
parameter and value.

The exceptions of :data:`KNOWN_ESCAPES`, found in modules other engineers
own, are expected; the test fails when one of them is fixed, so the list
stays true. The tests after the walk pin each fix it led to.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Tuple

import pytest
import requests

import apitx
from apitx import APITXError, ensure
from apitx.testing import Answer, MockRequest, MockTransport, operation, recorder

from hostile_ws import running_ws_server
from sandbox import NOWHERE_SOCKET

#: What goes where an argument should be.
BAD: Dict[str, Any] = {
    "None": None, "int": 7, "negative": -1, "nan": math.nan, "inf": math.inf, "true": True,
    "empty": "", "relative": "etc/motd", "crlf": "a\r\nb", "nul": "a\x00b", "bytes": b"x",
    "list": [], "dict": {}, "object": object(),
}

#: Escapes in code this walk may not change: ``call(param=value)`` -> the
#: exception type that escapes. None left (run_exec checks ``instance`` and
#: ``env`` now).
KNOWN_ESCAPES: Dict[str, str] = {}

FINGERPRINT = "a" * 64


def lxd(request: MockRequest) -> Answer:
    """A small LXD: enough answers for every call of the walk to succeed
    with good arguments (and to reach the server with bad ones)."""
    path, method = request.path, request.method
    parts = path.split("/")
    if path == "/1.0":
        return Answer.sync({"api_version": "1.0", "auth": "trusted", "api_extensions": ["etag"],
                            "environment": {"server": "lxd", "server_version": "5.0.2"}})
    if method != "GET" and not path.endswith("/files"):
        return Answer.operation(operation("op1", 103, metadata={"fds": {}}))
    if path.startswith("/1.0/operations/"):
        return Answer.sync(operation("op1", 200, metadata={"return": 0}))
    if path.endswith("/files"):
        return Answer(200, b"content", {"Content-Type": "application/octet-stream",
                                        "X-LXD-Type": "file", "X-LXD-Uid": "0",
                                        "X-LXD-Gid": "0", "X-LXD-Mode": "0644"})
    if path.endswith("/state"):
        return Answer.sync({"status": "Stopped"})
    if path.startswith("/1.0/images/aliases/"):
        return Answer(200, Answer.sync({"name": parts[-1], "target": FINGERPRINT,
                                        "description": ""}).body, {"ETag": '"e1"'})
    if path.startswith("/1.0/images/"):
        return Answer.sync({"fingerprint": FINGERPRINT, "aliases": []})
    if len(parts) == 4 and parts[2] in ("instances", "profiles"):
        # Already as the ensure cases want it: no write, no read-back loop.
        return Answer(200, Answer.sync({"name": parts[3], "status": "Stopped",
                                        "config": {"limits.cpu": "1"},
                                        "devices": {}, "profiles": ["default"],
                                        "description": ""}).body, {"ETag": '"e1"'})
    return Answer.sync([])


@dataclass(frozen=True)
class Case:
    """A public call, and arguments that work: ``call(api, **good)``; ``bad``
    names the values of :data:`BAD` tried in their place."""

    name: str
    call: Callable[..., Any]
    good: Dict[str, Any]
    bad: Tuple[str, ...] = tuple(BAD)


def write_through(path: Any) -> None:
    with apitx.atomic_write(path) as out:
        out.write(b"x")


def started(api: apitx.API) -> apitx.APIResult:
    return api.post("instances", json={"name": "c1"})


#: API.wait's good ``result``: an operation started on the API of each call.
STARTED = object()


def cases(tmp: Path) -> List[Case]:
    image = tmp / "image.tar.gz"
    image.write_bytes(b"not really an image")
    tree = tmp / "tree"
    tree.mkdir(exist_ok=True)
    (tree / "f").write_bytes(b"x")
    http = {"params": None, "headers": None, "timeout": 5, "validate": True}
    body = {"json": None, "data": None}
    factory = {"endpoint": "https://lxd.test:8443", "default_version": "1.0", "cert": None,
               "verify": True, "debug": False, "timeout": 5, "trace": None,
               "max_answer_bytes": 1 << 20, "fingerprint": None, "project": None,
               "target": None, "limits": None}
    exec_ = {"instance": "c1", "command": ["true"], "stdin": None, "env": None, "cwd": None,
             "user": None, "group": None, "timeout": None, "stdout": None, "stderr": None,
             "project": None, "terminal": None, "on_start": None}
    return [
        # -- making an API --------------------------------------------------------------
        Case("API.factory", lambda api, **kw: apitx.API.factory(**kw).close(), factory),
        Case("API.factory(transport=)",
             lambda api, **kw: apitx.API.factory(**kw).get(""), {"transport": MockTransport(lxd)}),
        Case("API()", lambda api, **kw: apitx.API(**kw).close(),
             {"session": requests.Session(), "endpoint": "https://lxd.test:8443",
              "default_version": "1.0", "debug": False, "timeout": 5, "trace": None,
              "max_answer_bytes": 1 << 20, "project": None, "target": None}),
        Case("API.using", lambda api, **kw: api.using(**kw).get(""),
             {"project": "p", "target": "m1"}),
        # -- requests ---------------------------------------------------------------
        Case("API.request", lambda api, **kw: api.request(**kw),
             {"method": "GET", "url": "instances", **http, **body, "stream": False,
              "follow_redirects": False}),
        *[Case(f"API.{verb}", lambda api, verb=verb, **kw: getattr(api, verb)(**kw),
               {"url": "instances", **http}) for verb in ("get", "head", "delete")],
        *[Case(f"API.{verb}", lambda api, verb=verb, **kw: getattr(api, verb)(**kw),
               {"url": "instances", **http, **body, "stream": False})
          for verb in ("post", "put", "patch")],
        Case("API.url", lambda api, **kw: api.url(**kw), {"url": "instances"}),
        Case("API.curl", lambda api, **kw: api.curl(**kw),
             {"method": "GET", "url": "instances", "params": None, "headers": None, **body}),
        Case("API.has_extension", lambda api, **kw: api.has_extension(**kw), {"name": "etag"}),
        Case("API.require", lambda api, name: api.require(name), {"name": "etag"}),
        Case("API.websocket", lambda api, **kw: api.websocket(**kw),
             {"path": "events", "params": None, "timeout": None}),
        # -- navigation -------------------------------------------------------------
        Case("API[item]", lambda api, item: api[item].get(), {"item": "instances"}),
        Case("API / item", lambda api, item: (api / item).get(), {"item": "instances"}),
        # Python gives attribute names as str only (getattr() refuses others).
        Case("API.<name>", lambda api, name: getattr(api, name).get(), {"name": "instances"},
             bad=("empty", "relative", "crlf", "nul")),
        Case("Resource[item]", lambda api, item: api.instances[item].get(), {"item": "c1"}),
        Case("Resource.get", lambda api, **kw: api.instances.c1.get(**kw),
             {**http, "stream": False}),
        Case("Resource.post", lambda api, **kw: api.instances.post(**kw),
             {**http, **body, "stream": False}),
        # -- waiting ----------------------------------------------------------------
        Case("APIResult.wait", lambda api, **kw: started(api).wait(**kw),
             {"timeout": 5, "progress": None}),
        Case("API.wait", lambda api, **kw: api.wait(**kw),
             {"result": STARTED, "timeout": 5, "progress": None}),
        Case("API.wait_all", lambda api, **kw: api.wait_all(**kw),
             {"results": [], "timeout": 5, "return_exceptions": False}),
        Case("APIResult.iter_content",
             lambda api, **kw: list(api.get("instances/c1/files", stream=True).iter_content(**kw)),
             {"chunk_size": 4}),
        Case("APIResult.validate_metadata",
             lambda api, **kw: api.get("").validate_metadata(**kw), {"data": {}}),
        Case("APIResult.locate", lambda api, **kw: api.get("").locate(**kw),
             {"path": "/1.0/instances"}),
        Case("APIResult.server_message", lambda api, **kw: api.get("").server_message(**kw),
             {"node": None}),
        # -- exec and events: the mock opens no websocket, so they end in
        # APIConnectionError once their arguments pass.
        Case("API.exec", lambda api, **kw: api.exec(**kw), exec_),
        Case("run_exec", lambda api, **kw: apitx.run_exec(api, **kw), exec_),
        Case("API.events", lambda api, **kw: api.events(**kw),
             {"types": ["operation"], "project": None, "all_projects": False, "timeout": None}),
        Case("events", lambda api, **kw: apitx.events(api, **kw),
             {"types": ["operation"], "project": None, "all_projects": False, "timeout": None}),
        # -- files ------------------------------------------------------------------
        Case("API.files", lambda api, **kw: api.files(**kw).pull("/etc/motd"),
             {"instance": "c1", "project": None}),
        Case("Files.push", lambda api, **kw: api.files("c1").push(**kw),
             {"path": "/etc/motd", "source": b"hi", "uid": None, "gid": None, "mode": None,
              "append": False}),
        Case("Files.pull", lambda api, **kw: api.files("c1").pull(**kw),
             {"path": "/etc/motd", "target": None}),
        Case("Files.listdir", lambda api, **kw: api.files("c1").listdir(**kw), {"path": "/etc"}),
        Case("Files.mkdir", lambda api, **kw: api.files("c1").mkdir(**kw),
             {"path": "/srv", "uid": None, "gid": None, "mode": 0o755}),
        Case("Files.delete", lambda api, **kw: api.files("c1").delete(**kw), {"path": "/x"}),
        Case("Files.symlink", lambda api, **kw: api.files("c1").symlink(**kw),
             {"path": "/x", "target": "/etc/motd"}),
        Case("Files.push_tree", lambda api, **kw: api.files("c1").push_tree(**kw),
             {"local_dir": str(tree), "path": "/srv/tree"}),
        Case("Files.pull_tree", lambda api, **kw: api.files("c1").pull_tree(**kw),
             {"path": "/etc/motd", "local_dir": str(tmp / "pulled")}),
        # -- values -----------------------------------------------------------------
        Case("Timeout", lambda api, **kw: apitx.Timeout(**kw),
             {"connect": 1, "read": 2, "total": 3}),
        Case("Timeout.coerce", lambda api, **kw: apitx.Timeout.coerce(**kw), {"value": 5}),
        Case("Limits", lambda api, **kw: apitx.Limits(**kw),
             {"max_connections": 4, "max_keepalive_connections": 2}),
        Case("TraceSettings", lambda api, **kw: apitx.TraceSettings(**kw),
             {"enabled": True, "format": "text", "file": "",
              "render": apitx.RenderOptions()}),
        Case("TraceSettings.coerce", lambda api, **kw: apitx.TraceSettings.coerce(**kw),
             {"value": "json", "debug": False}),
        Case("RenderOptions", lambda api, **kw: apitx.RenderOptions(**kw),
             {"unsafe": False, "max_body": 100}),
        Case("Pin.from_fingerprints", lambda api, **kw: apitx.Pin.from_fingerprints(**kw),
             {"fingerprints": "sha256:" + FINGERPRINT}),
        Case("Pin.from_file", lambda api, **kw: apitx.Pin.from_file(**kw),
             {"path": str(image)}),
        Case("Endpoint.parse", lambda api, **kw: apitx.Endpoint.parse(**kw),
             {"text": "https://h:8443"}),
        Case("Endpoint.coerce", lambda api, **kw: apitx.Endpoint.coerce(**kw),
             {"value": "/var/lib/lxd/unix.socket"}),
        Case("Endpoint.discover", lambda api, **kw: apitx.Endpoint.discover(**kw),
             {"environ": {"LXD_SOCKET": str(image)}, "family": None}),
        Case("Server.from_metadata", lambda api, **kw: apitx.Server.from_metadata(**kw),
             {"metadata": {}}),
        Case("Event.parse", lambda api, **kw: apitx.Event.parse(**kw),
             {"message": '{"type": "logging", "metadata": {}}'}),
        Case("atomic_write", lambda api, **kw: write_through(**kw),
             {"path": str(tmp / "written.bin")}),
        Case("list_remotes", lambda api, **kw: apitx.list_remotes(**kw),
             {"environ": {"HOME": str(tmp)}}),
        Case("remove_remote", lambda api, **kw: apitx.remove_remote(**kw),
             {"name": "web", "config_dir": str(tmp / "conf")}),
        Case("add_remote", lambda api, **kw: apitx.add_remote(**kw),
             {"name": "web", "url": "https://127.0.0.1:9", "token": None, "password": None,
              "fingerprint": None, "accept_certificate": False, "project": None,
              "config_dir": str(tmp / "conf"), "timeout": 1.0}),
        # -- ensure -----------------------------------------------------------------
        Case("ensure.instance_present", lambda api, **kw: ensure.instance_present(api, **kw),
             {"name": "c1", "source": "apitx-busybox", "config": {"limits.cpu": "1"},
              "devices": None, "profiles": None, "check": False}),
        Case("ensure.instance_absent", lambda api, **kw: ensure.instance_absent(api, **kw),
             {"name": "c1", "check": True}),
        Case("ensure.instance_state", lambda api, **kw: ensure.instance_state(api, **kw),
             {"name": "c1", "state": "Stopped", "check": False}),
        Case("ensure.image_present", lambda api, **kw: ensure.image_present(api, **kw),
             {"path": str(image), "alias": None, "check": True}),
        Case("ensure.image_alias_present",
             lambda api, **kw: ensure.image_alias_present(api, **kw),
             {"alias": "web", "fingerprint": FINGERPRINT, "description": None, "check": True}),
        Case("ensure.image_absent", lambda api, **kw: ensure.image_absent(api, **kw),
             {"fingerprint_or_alias": FINGERPRINT, "check": True}),
        Case("ensure.profile_present", lambda api, **kw: ensure.profile_present(api, **kw),
             {"name": "p", "config": {"limits.cpu": "1"}, "devices": None,
              "description": None, "check": False}),
        Case("ensure.profile_absent", lambda api, **kw: ensure.profile_absent(api, **kw),
             {"name": "p", "check": True}),
        Case("ensure.file_fingerprint", lambda api, **kw: ensure.file_fingerprint(**kw),
             {"path": str(image)}),
        Case("ensure.plan", lambda api, **kw: ensure.plan(**kw),
             {"current": {"config": {}}, "wanted": {"config": {"a": "1"}}}),
        # -- apitx.testing ----------------------------------------------------------
        Case("MockTransport", lambda api, **kw: MockTransport(**kw), {"handler": lxd}),
        Case("Answer", lambda api, **kw: apitx.API.factory(
            transport=MockTransport(lambda request: Answer(**kw))).get("", validate=False),
            {"status": 200, "body": b"", "headers": {}}),
        Case("Answer.sync", lambda api, **kw: apitx.API.factory(
            transport=MockTransport(lambda request: Answer.sync(**kw))).get(""),
            {"metadata": {}, "status": 200}),
        Case("Answer.error", lambda api, **kw: apitx.API.factory(
            transport=MockTransport(lambda request: Answer.error(**kw))).get("", validate=False),
            {"status": 404, "message": "not found"}),
        Case("operation", lambda api, **kw: apitx.API.factory(transport=MockTransport(
            lambda request: Answer.operation(operation(**kw)))).get(""),
            {"op_id": "op1", "status_code": 200, "err": "", "metadata": None}),
        Case("recorder", lambda api, **kw: recorder(**kw), {"cassette_dir": str(tmp / "c"),
                                                             "record_mode": "none"}),
    ]


def variants(case: Case) -> Iterator[Tuple[str, Dict[str, Any]]]:
    """``(label, arguments)``: the good ones, then each parameter given each bad value."""
    yield f"{case.name}(good)", dict(case.good)
    for param in case.good:
        for label in case.bad:
            yield f"{case.name}({param}={label})", {**case.good, param: BAD[label]}


def escape_of(call: Callable[[], Any]) -> str:
    """'' if ``call`` returned or raised within the promise, else what escaped."""
    try:
        result = call()
        if isinstance(result, apitx.API):
            result.close()
    except APITXError:
        pass
    except Exception as error:  # noqa: BLE001 - what the walk is looking for
        return f"{type(error).__name__}: {error}"
    return ""


def test_every_exception_of_the_public_api_is_an_apitx_error(tmp_path, monkeypatch):
    # Relative paths given as arguments land here, never in the checkout.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DEBUG", raising=False)  # a thousand calls traced would bury a failure
    # The small LXD never applies a write: no pauses while ensure retries it.
    monkeypatch.setattr(ensure, "READBACK_DELAY", 0)
    monkeypatch.setattr(ensure, "BACKOFF_SECONDS", 0)
    escapes: Dict[str, str] = {}
    for case in cases(tmp_path):
        for label, arguments in variants(case):
            with apitx.API.factory(transport=MockTransport(lxd)) as api:
                if arguments.get("result") is STARTED:
                    arguments["result"] = started(api)
                escaped = escape_of(lambda: case.call(api, **arguments))
            if escaped:
                escapes[label] = escaped
    unexpected = {label: what for label, what in escapes.items()
                  if KNOWN_ESCAPES.get(label) != what.split(":", 1)[0]}
    fixed = sorted(set(KNOWN_ESCAPES) - set(escapes))
    assert not unexpected and not fixed, (
        "\n".join(f"{label}: {what}" for label, what in sorted(unexpected.items()))
        + (f"\nno longer escaping (remove from KNOWN_ESCAPES): {fixed}" if fixed else ""))


# -- what the walk found, one test per fix -----------------------------------------------

def answering(status: str) -> Callable[[MockRequest], Answer]:
    """The small LXD, with instance ``c1`` in ``status`` and nothing called ``gone``."""
    def handler(request: MockRequest) -> Answer:
        if "/gone" in request.path:
            return Answer.error(404, "not found")
        if request.path.endswith("/state"):
            return Answer.sync({"status": status})
        return lxd(request)
    return handler


@pytest.mark.parametrize("call, kind, words", [
    (lambda api: ensure.profile_present(api, "p", config={"volatile.uuid": "x"}),
     apitx.RequestError, "volatile.* keys are LXD's own state"),
    (lambda api: ensure.profile_present(api, "p", config={"limits.cpu": 2}),
     apitx.RequestTypeError, "LXD config values are strings, give '2'"),
    (lambda api: ensure.profile_present(api, "p", config="limits.cpu=2"),
     apitx.RequestTypeError, "config: 'limits.cpu=2' is not a mapping"),
    (lambda api: ensure.instance_present(api, "c1", devices={"root": "disk"}),
     apitx.RequestTypeError, "devices['root']: 'disk' is not a mapping"),
    (lambda api: ensure.instance_present(api, "gone"),
     apitx.RequestError, "nothing was given to create it from"),
    (lambda api: ensure.instance_state(api, "c1", "Paused"),
     apitx.RequestError, "state 'Paused': give one of Running, Stopped, Frozen"),
    (lambda api: ensure.instance_state(api, "c1", None),
     apitx.RequestTypeError, "instance_state(state): None is not a str"),
    (lambda api: ensure.instance_state(api, "c1", "Frozen"),
     apitx.RequestError, "is 'Starting': cannot make it Frozen from there"),
    (lambda api: ensure.plan(None, {}), apitx.RequestTypeError, "plan(current): None"),
    (lambda api: ensure.file_fingerprint(True), apitx.RequestTypeError, "not a local path"),
    (lambda api: ensure.image_present(api, "/nonexistent/web.tar.gz"),
     apitx.RequestError, "cannot use /nonexistent/web.tar.gz: No such file or directory"),
], ids=["volatile", "int-value", "config-str", "device-str", "nothing-to-create", "state-name",
        "state-none", "state-unsettled", "plan-none", "fingerprint-fd", "image-missing"])
def test_ensure_refuses_mistakes_in_the_tree_with_their_words(call, kind, words):
    """Before, bare ValueError/TypeError (and file_fingerprint(True) read and
    closed the caller's stdout): now in the tree, still ValueError/TypeError."""
    with apitx.API.factory(transport=MockTransport(answering("Starting"))) as api:
        with pytest.raises(kind) as info:
            call(api)
    assert words in str(info.value)
    assert isinstance(info.value, ValueError if kind is apitx.RequestError else TypeError)


@pytest.mark.parametrize("kwargs, words", [
    ({"data": 1.5}, "data= is a float: give bytes, str, a binary file or an iterator of bytes"),
    ({"data": True}, "data= is a bool"),
    ({"headers": "Authorization: Bearer PLANTED"}, "headers= is a str: give a mapping"),
], ids=["float-body", "bool-body", "str-headers"])
def test_a_body_or_headers_of_no_usable_type_are_refused_unquoted(kwargs, words):
    """Before: TypeError from deep in the send, AttributeError from requests."""
    transport = MockTransport(lambda request: Answer.sync())
    with apitx.API.factory(transport=transport) as api, \
            pytest.raises(apitx.RequestTypeError) as info:
        api.post("instances", **kwargs)
    assert str(info.value).startswith(f"POST https://lxd.test:8443/1.0/instances: {words}")
    assert "PLANTED" not in str(info.value) and "nothing was sent" in str(info.value)
    assert transport.requests == []


@pytest.mark.parametrize("call", [
    ensure.file_fingerprint,
    apitx.Pin.from_file,
    lambda fd: apitx.API.factory(transport=MockTransport(lxd)).files("c1").pull("/x", fd),
    lambda fd: apitx.API.factory(transport=MockTransport(lxd)).files("c1").push_tree(fd, "/x"),
], ids=["file_fingerprint", "Pin.from_file", "Files.pull", "Files.push_tree"])
def test_an_int_is_never_taken_for_a_file_descriptor(call):
    """open(7) opens descriptor 7 and closes it when done: before, these read
    (and closed) whatever the caller had open there, stdout for True."""
    read_end, write_end = os.pipe()
    os.write(write_end, b"not yours")
    os.close(write_end)
    try:
        with pytest.raises((apitx.RequestTypeError, apitx.SettingsTypeError)):
            call(read_end)
        assert os.read(read_end, 100) == b"not yours"  # still open, still unread
    finally:
        os.close(read_end)


@pytest.mark.parametrize("method, labels", [
    ("confirm", ("None", "nan", "negative", "empty", "bytes", "list", "object")),
    ("next_event", ("nan", "negative", "empty", "bytes", "list", "object")),
    ("settimeout", ("nan", "negative", "empty", "bytes", "list", "object")),
])
def test_an_event_streams_timeouts_are_checked(method, labels):
    """EventStream needs a websocket (the silent server of tests/hostile_ws.py).
    Before: time.monotonic() + 'x' raised TypeError, NaN a ValueError, inf
    an OverflowError; settimeout() took anything, for the next read to fail."""
    with running_ws_server([], then_drop=False) as server, \
            apitx.events(apitx.API.factory(server.server_address)) as stream:
        for label in labels:
            with pytest.raises((apitx.RequestError, apitx.RequestTypeError),
                               match=rf"^{method}\((timeout|seconds)\): "):
                getattr(stream, method)(BAD[label])
        assert stream.confirm(0) is False  # the stream still works


@pytest.mark.parametrize("arguments, mistake, words", [
    ({"timeout": math.inf}, apitx.RequestError, "exec(timeout=...): inf is not"),
    ({"timeout": math.nan}, apitx.RequestError, "exec(timeout=...): nan is not"),
    ({"timeout": "5"}, apitx.RequestTypeError, "exec(timeout=...): '5' is not"),
    ({"timeout": -1}, apitx.RequestError, "exec(timeout=...): -1 is not"),
    ({"terminal": "80x24"}, apitx.RequestTypeError, "terminal='80x24': give (width, height)"),
    ({"stdin": 5}, apitx.RequestTypeError, "stdin=5: give bytes"),
], ids=["timeout-inf", "timeout-nan", "timeout-str", "timeout-negative", "terminal-str",
        "stdin-int"])
def test_exec_values_are_refused_before_anything_is_sent(arguments, mistake, words):
    """Issue 16: exec(timeout=math.inf|nan|'5') used to start the command
    first and fail only when the timeout was used; terminal='80x24' and
    stdin=5 likewise reached the server. Each is refused before a byte leaves."""
    # A socket that cannot exist: a call that sent anything would end in
    # APIConnectionError, never in the caller's mistake.
    with apitx.API.factory(NOWHERE_SOCKET) as api:
        with pytest.raises(mistake) as caught:
            api.exec("c1", ["true"], **arguments)
    assert str(caught.value).startswith(words), str(caught.value)
    assert str(caught.value).endswith("nothing was sent")


def test_a_fingerprint_that_is_no_fingerprint_is_refused_when_the_api_is_made():
    """Issue 16: API.factory(fingerprint=123) is a settings mistake, in the tree."""
    with pytest.raises(apitx.SettingsTypeError, match=r"^fingerprint=123: give 'sha256:"):
        apitx.API.factory("https://127.0.0.1:8443", fingerprint=123)
