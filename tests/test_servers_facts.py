"""Live facts about the two servers apitx speaks to: LXD 5.0.2 and Incus 6.0.

Each test asks both daemons that ``scripts/lxd-sandbox`` prepares the same
question and pins each one's real answer: where they differ, a client has to
know which one it talks to (docs/servers-findings.md says what to do about
each); where they agree, apitx relies on it for both. A server upgrade that
changes an answer fails here first, by name, instead of deep inside a library
test. Nothing is faked: every answer comes from the real daemon.

Expectations that differ are kept per server in ``Server``, so each test reads
as "ask, then compare with what this server is known to say".
"""

from __future__ import annotations

import base64
import os
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Iterator

import pytest

import apitx
from apitx import OperationTimeout

from sandbox import (SERVER_BY_NAME, SERVERS, SandboxServer, instance_config, instance_not_found,
                     live_server, remove_instance)

pytestmark = pytest.mark.live


@dataclass(frozen=True)
class Server:
    """One server of the sandbox (tests/sandbox.py's ``SERVERS``: its name and
    socket), and the answers that are its own."""

    sandbox: SandboxServer        # name (environment.server, the pytest id), socket
    version_prefix: str           # environment.server_version
    header: str                   # the file API's header family, as sent
    extension: str                # an API extension only this server has
    missing_instance: str         # error of GET /1.0/instances/nope
    exec_log_dir: str             # where record-output logs live, under the instance
    mkdir_mode: str               # mode of a directory pushed with no mode header
    missing_log_status: int       # GET of an exec log that does not exist

    @property
    def name(self) -> str:
        return self.sandbox.name

    @property
    def socket(self) -> str:
        return self.sandbox.socket


LXD = Server(SERVER_BY_NAME["lxd"], version_prefix="5.0.",
             header="X-LXD", extension="devlxd_events",
             missing_instance=instance_not_found("lxd", "nope"),
             exec_log_dir="logs", mkdir_mode="0750", missing_log_status=500)
INCUS = Server(SERVER_BY_NAME["incus"], version_prefix="6.0.",
               header="X-Incus", extension="dev_incus_events",
               missing_instance=instance_not_found("incus", "nope"),
               exec_log_dir="logs/exec-output", mkdir_mode="0755", missing_log_status=404)
OTHER = {LXD.name: INCUS, INCUS.name: LXD}
#: In the order of SERVERS; a server added there without facts here fails at import.
FACTS = [{LXD.name: LXD, INCUS.name: INCUS}[server.name] for server in SERVERS]


@pytest.fixture(scope="module", params=FACTS, ids=lambda server: server.name)
def server(request: pytest.FixtureRequest) -> Server:
    live_server(request.param.sandbox)
    return request.param


@pytest.fixture(scope="module")
def api(server: Server) -> Iterator[apitx.API]:
    with apitx.API.factory(server.socket) as live:
        yield live


@pytest.fixture(scope="module")
def running(api: apitx.API) -> Iterator[str]:
    """One started busybox instance per server, shared by the module's tests
    (none of them changes it), deleted afterwards whatever happens."""
    name = unique_name()
    try:
        api.post("instances", json=instance_config(name)).wait(timeout=120)
        api.put(f"instances/{name}/state", json={"action": "start"}).wait(timeout=60)
        yield name
    finally:
        remove_instance(api, name)


def unique_name() -> str:
    return f"apitx-{uuid.uuid4().hex[:10]}"


def recorded_exec(api: apitx.API, name: str, command: list, **params) -> apitx.APIResult:
    """Start ``command`` with its output recorded; return the 202 answer."""
    return api.post(f"instances/{name}/exec", params=params,
                    json={"command": command, "record-output": True,
                          "wait-for-websocket": False, "interactive": False})


def error_of(result: apitx.APIResult) -> tuple:
    """(HTTP status, type, error_code, error) of an answer."""
    data = result.data
    return result.status_code, data["type"], data["error_code"], data["error"]


# -- GET /1.0 -------------------------------------------------------------------


def test_server_names_itself_in_environment(server: Server, api: apitx.API) -> None:
    metadata = api.get("").metadata
    environment = metadata["environment"]
    assert environment["server"] == server.name
    assert environment["server_version"].startswith(server.version_prefix)
    assert (metadata["api_version"], metadata["auth"], metadata["auth_methods"]) == \
        ("1.0", "trusted", ["tls"])


def test_api_extensions_are_renamed_not_shared(server: Server, api: apitx.API) -> None:
    """Incus renamed LXD's devlxd_* extensions (dev_incus_*) and dropped
    LXD-only ones (candid, rbac, macaroon): test a feature by the name this
    server uses."""
    extensions = api.get("").metadata["api_extensions"]
    assert server.extension in extensions
    assert OTHER[server.name].extension not in extensions
    assert ("candid_authentication" in extensions) == (server is LXD)


# -- error answers ----------------------------------------------------------------


def test_missing_instance_error_text_differs(server: Server, api: apitx.API) -> None:
    assert error_of(api.get("instances/nope", validate=False)) == \
        (404, "error", 404, server.missing_instance)


@pytest.mark.parametrize("method, path, kwargs, expected", [
    ("GET", "operations/00000000-0000-0000-0000-000000000000", {},
     (404, "error", 404, "Operation not found")),
    ("GET", "bogus", {}, (404, "error", 404, "not found")),
    # a trailing slash is an unknown path on both: build /1.0, never /1.0/
    ("GET", "/1.0/", {}, (404, "error", 404, "not found")),
    ("GET", "/1.0/instances/", {}, (404, "error", 404, "not found")),
    ("POST", "instances", {"data": b"{nope", "headers": {"Content-Type": "application/json"}},
     (400, "error", 400, "invalid character 'n' looking for beginning of object key string")),
], ids=["missing-operation", "unknown-path", "slash-1.0", "slash-instances", "bad-json"])
def test_error_answers_both_agree_on(server: Server, api: apitx.API, method: str, path: str,
                                     kwargs: dict, expected: tuple) -> None:
    assert error_of(api.request(method, path, validate=False, **kwargs)) == expected


def test_instance_errors_both_agree_on(api: apitx.API, running: str) -> None:
    got = api.get(f"instances/{running}")
    etag = got.response.headers["ETag"].strip('"')
    stale = api.put(f"instances/{running}", json=got.metadata,
                    headers={"If-Match": '"deadbeef"'}, validate=False)
    assert error_of(stale) == (412, "error", 412, f"ETag doesn't match: {etag} vs deadbeef")
    banana = api.patch(f"instances/{running}", json={"config": {"limits.cpu": "banana"}},
                       validate=False)
    assert error_of(banana) == (500, "error", 500, "Invalid config: Invalid CPU limit syntax")
    assert error_of(api.delete(f"instances/{running}", validate=False)) == \
        (400, "error", 400, "Instance is running")


def test_exec_operation_cannot_be_cancelled(api: apitx.API, running: str) -> None:
    started = recorded_exec(api, running, ["/bin/sleep", "1"])
    assert started.metadata["may_cancel"] is False
    assert error_of(api.delete(started.operation, validate=False)) == \
        (400, "error", 400, "This operation can't be cancelled")
    started.wait(timeout=30)


def test_etag_on_objects_not_on_lists(api: apitx.API, running: str) -> None:
    assert api.get("").response.headers.get("ETag")
    assert api.get(f"instances/{running}").response.headers.get("ETag")
    assert api.get("profiles/default").response.headers.get("ETag")
    assert api.get("instances").response.headers.get("ETag") is None
    assert api.get(f"instances/{running}/state").response.headers.get("ETag") is None


# -- operations -------------------------------------------------------------------


def test_wait_timeout_on_a_running_operation(server: Server, api: apitx.API,
                                             running: str) -> None:
    """LXD answers the operation, still Running; Incus answers HTTP 200 with
    an *error* body (it sends its 200 headers before the wait ends): a client
    must not read Incus's answer as a failure of the operation."""
    started = recorded_exec(api, running, ["/bin/sleep", "6"])
    # Answered at the timeout, not at the end of the command: the operation
    # is still running in LXD's answer, and after Incus's.
    answer = api.get(f"{started.operation}/wait", params={"timeout": 1}, validate=False)
    if server is LXD:
        assert (answer.status_code, answer.data["type"]) == (200, "sync")
        assert (answer.metadata["status"], answer.metadata["status_code"]) == ("Running", 103)
    else:
        assert error_of(answer) == (200, "error", 500, "context deadline exceeded")
    # Either way the operation itself still runs (and ends on its own).
    assert api.get(started.operation).metadata["status_code"] == 103


@pytest.mark.parametrize("failing, incus_error_code", [
    ("duplicate-create", 500),
    ("command-not-found", 400),
])
def test_wait_on_a_failed_operation(server: Server, api: apitx.API, running: str,
                                    failing: str, incus_error_code: int) -> None:
    """Both accept the request (202) and fail inside. LXD's wait answers the
    Failure operation; Incus's answers HTTP 200 ``type: error`` with the
    operation's ``err`` as ``error`` and an error_code that is not the
    operation's status_code (500 for one, 400 for the other, both 400 in the
    operation). The operation itself, fetched, says Failure/400 on both."""
    if failing == "duplicate-create":
        started = api.post("instances", json=instance_config(running))
    else:
        started = recorded_exec(api, running, ["/nonexistent"])
    assert (started.status_code, started.data["type"]) == (202, "async")
    answer = api.get(f"{started.operation}/wait", params={"timeout": 30}, validate=False)
    operation = api.get(started.operation, validate=False).metadata
    assert (operation["status"], operation["status_code"]) == ("Failure", 400)
    if server is LXD:
        assert (answer.status_code, answer.data["type"]) == (200, "sync")
        assert answer.metadata["status_code"] == 400
        assert answer.metadata["err"] == operation["err"]
    else:
        assert error_of(answer) == (200, "error", incus_error_code, operation["err"])


def test_create_from_missing_image(server: Server, api: apitx.API) -> None:
    """LXD refuses a missing image alias up front (404); Incus accepts it and
    the operation fails."""
    name = unique_name()
    try:
        answer = api.post("instances", validate=False, json={
            "name": name, "source": {"type": "image", "alias": f"apitx-nope-{uuid.uuid4().hex}"}})
        if server is LXD:
            assert error_of(answer) == (404, "error", 404, "Image alias not found")
        else:
            assert answer.status_code == 202
            api.get(f"{answer.operation}/wait", params={"timeout": 30}, validate=False)
            operation = api.get(answer.operation, validate=False).metadata
            assert (operation["status_code"], operation["err"]) == \
                (400, "Image not provided for instance creation")
    finally:
        remove_instance(api, name)


def test_create_operation_resources(server: Server, api: apitx.API) -> None:
    """LXD still lists the old ``containers`` resource beside ``instances``."""
    name = unique_name()
    try:
        started = api.post("instances", json=instance_config(name))
        # Wait before asserting: cleanup must not race a create in flight.
        started.wait(timeout=120)
        resources = started.metadata["resources"]
        assert resources["instances"] == [f"/1.0/instances/{name}"]
        assert ("containers" in resources) == (server is LXD)
    finally:
        remove_instance(api, name)


def test_finished_operation_is_forgotten_after_a_while(api: apitx.API, running: str) -> None:
    """Kept once it ended (a wait that comes late still finds it), then
    forgotten (404). How long it is kept (about 5 s): bench/deadlines.py."""
    started = recorded_exec(api, running, ["/bin/true"])
    started.wait(timeout=30)
    assert api.get(started.operation).metadata["status"] == "Success"
    deadline = time.monotonic() + 120  # a hang guard, not a measure
    while (gone := api.get(started.operation, validate=False)).status_code == 200:
        assert time.monotonic() < deadline, "finished operation still listed after 120 s"
        time.sleep(0.25)
    assert error_of(gone) == (404, "error", 404, "Operation not found")


def test_operations_list_is_grouped_by_status(api: apitx.API, running: str) -> None:
    started = recorded_exec(api, running, ["/bin/sleep", "2"])
    listed = api.get("operations").metadata
    assert set(listed) <= {"running", "success", "failure", "cancelled", "pending"}
    assert started.operation in listed["running"]
    detailed = api.get("operations", params={"recursion": 1}).metadata
    assert started.metadata["id"] in [op["id"] for op in detailed["running"]]
    started.wait(timeout=30)


# -- exec output ------------------------------------------------------------------


def test_exec_record_output_log_paths(server: Server, api: apitx.API, running: str) -> None:
    done = recorded_exec(api, running, ["/bin/sh", "-c", "echo out; echo err >&2; exit 3"]) \
        .wait(timeout=30)
    operation_id = done.metadata["id"]
    base = f"/1.0/instances/{running}/{server.exec_log_dir}/exec_{operation_id}"
    assert done.metadata["metadata"] == {
        "output": {"1": f"{base}.stdout", "2": f"{base}.stderr"}, "return": 3}
    for url, text in ((f"{base}.stdout", b"out\n"), (f"{base}.stderr", b"err\n")):
        log = api.get(url)
        assert log.response.headers["Content-Type"] == "application/octet-stream"
        assert log.response.content == text
    listed = api.get(f"instances/{running}/{server.exec_log_dir}").metadata
    assert f"{base}.stdout" in listed


def test_exec_logs_listing_directory(server: Server, api: apitx.API, running: str) -> None:
    """LXD has no ``exec-output`` directory: its name is refused as a log."""
    answer = api.get(f"instances/{running}/logs/exec-output", validate=False)
    if server is LXD:
        assert error_of(answer) == (400, "error", 400, "log file name exec-output not valid")
    else:
        assert answer.status_code == 200 and isinstance(answer.metadata, list)


def test_missing_exec_log_status(server: Server, api: apitx.API, running: str) -> None:
    """LXD answers a missing log with 500 (its open() error), Incus with 404."""
    answer = api.get(f"instances/{running}/{server.exec_log_dir}/exec_nope.stdout",
                     validate=False)
    status, kind, code, error = error_of(answer)
    assert (status, kind, code) == (server.missing_log_status, "error", server.missing_log_status)
    assert error.endswith("exec_nope.stdout: no such file or directory")


# -- the file API -----------------------------------------------------------------


def files(api: apitx.API, name: str, method: str, path: str, **kwargs) -> apitx.APIResult:
    return api.request(method, f"instances/{name}/files", params={"path": path},
                       validate=False, **kwargs)


def push(api: apitx.API, name: str, path: str, body: bytes, headers: dict) -> None:
    files(api, name, "POST", path, data=body,
          headers={"Content-Type": "application/octet-stream", **headers}).validate()


def owner(server: Server, result: apitx.APIResult) -> tuple:
    """(uid, gid, mode, type) from this server's own response headers."""
    headers = result.response.headers
    return tuple(headers.get(f"{server.header}-{field}") for field in ("Uid", "Gid", "Mode", "Type"))


@pytest.mark.parametrize("family", ["X-LXD", "X-Incus"])
def test_file_push_header_families(server: Server, api: apitx.API, running: str,
                                   family: str) -> None:
    """LXD reads only X-LXD-*; Incus reads X-Incus-* and still X-LXD-*. Each
    answers in its own family only."""
    honoured = family == "X-LXD" or server is INCUS
    base = f"/tmp/{unique_name()}"
    push(api, running, base, b"one\n",
         {f"{family}-uid": "1000", f"{family}-gid": "1001", f"{family}-mode": "0600"})
    push(api, running, base, b"two\n", {f"{family}-write": "append"})
    pulled = files(api, running, "GET", base)
    assert owner(server, pulled) == \
        (("1000", "1001", "0600", "file") if honoured else ("0", "0", "0644", "file"))
    assert pulled.response.content == (b"one\ntwo\n" if honoured else b"two\n")
    other = OTHER[server.name].header
    assert not [h for h in pulled.response.headers if h.lower().startswith(other.lower() + "-")]

    files(api, running, "POST", base + "-dir", headers={f"{family}-type": "directory"}).validate()
    push(api, running, base + "-link", base.encode(), {f"{family}-type": "symlink"})
    assert owner(server, files(api, running, "GET", base + "-dir"))[3] == \
        ("directory" if honoured else "file")
    assert owner(server, files(api, running, "GET", base + "-link"))[3] == \
        ("symlink" if honoured else "file")
    for path in (base + "-link", base + "-dir", base):
        files(api, running, "DELETE", path).validate()


def test_file_directories_missing_files_and_delete(server: Server, api: apitx.API,
                                                   running: str) -> None:
    base = f"/tmp/{unique_name()}"
    files(api, running, "POST", base, headers={f"{server.header}-type": "directory"}).validate()
    push(api, running, f"{base}/f", b"x", {})
    listing = files(api, running, "GET", base)
    assert listing.response.headers["Content-Type"] == "application/json"
    assert (listing.metadata, owner(server, listing)) == \
        (["f"], ("0", "0", server.mkdir_mode, "directory"))
    not_found = (404, "error", 404, "Not Found")
    assert error_of(files(api, running, "GET", f"{base}/nope")) == not_found
    assert error_of(files(api, running, "POST", f"{base}/no/such/f", data=b"x",
                          headers={"Content-Type": "application/octet-stream"})) == not_found
    status, _, _, error = error_of(files(api, running, "DELETE", base))
    assert (status, error) == (500, f'sftp: "remove {base}: directory not empty" (SSH_FX_FAILURE)')
    assert files(api, running, "DELETE", f"{base}/f").status_code == 200
    assert error_of(files(api, running, "GET", f"{base}/f")) == not_found
    assert error_of(files(api, running, "DELETE", f"{base}/f")) == not_found
    assert files(api, running, "DELETE", base).status_code == 200


def test_file_head(server: Server, api: apitx.API, running: str) -> None:
    """Both answer HEAD with the owner headers; only Incus gives the length
    and the real content type (LXD: application/json, no length)."""
    path = f"/tmp/{unique_name()}"
    push(api, running, path, b"12345678", {})
    try:
        head = files(api, running, "HEAD", path)
        assert head.status_code == 200
        assert owner(server, head) == ("0", "0", "0644", "file")
        headers = head.response.headers
        if server is LXD:
            assert (headers["Content-Type"], headers.get("Content-Length")) == \
                ("application/json", None)
        else:
            assert (headers["Content-Type"], headers["Content-Length"]) == \
                ("application/octet-stream", "8")
        assert files(api, running, "HEAD", path + "-nope").status_code == 404
    finally:
        files(api, running, "DELETE", path)


# -- events, recursion, projects --------------------------------------------------


def test_events_is_a_websocket_at_the_same_path(server: Server, api: apitx.API) -> None:
    plain = api.get("events", validate=False)
    assert (plain.status_code, plain.response.content) == (400, b"Bad Request\n")
    with socket.socket(socket.AF_UNIX) as conn:
        conn.settimeout(5)
        conn.connect(server.socket)
        key = base64.b64encode(os.urandom(16)).decode()
        conn.sendall(f"GET /1.0/events?type=operation HTTP/1.1\r\nHost: local\r\n"
                     f"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                     f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
        assert conn.recv(4096).startswith(b"HTTP/1.1 101 Switching Protocols\r\n")


def test_recursion_shapes(server: Server, api: apitx.API, running: str) -> None:
    assert f"/1.0/instances/{running}" in api.get("instances").metadata
    full = {i["name"]: i for i in api.get("instances", params={"recursion": 2}).metadata}
    assert {"state", "snapshots", "backups"} <= set(full[running])
    # Incus adds the start time and OS details to the state.
    assert ({"started_at", "os_info"} <= set(full[running]["state"])) == (server is INCUS)


def test_projects(server: Server, api: apitx.API) -> None:
    """Lists carry ``?project=`` on both, exec log URLs on neither (a client
    must add it), operation URLs on neither (operations are found without
    it); only Incus puts it in an operation's resources."""
    project, name = unique_name(), unique_name()
    api.post("projects", json={"name": project, "config": {
        "features.images": "false", "features.profiles": "false",
        "features.storage.volumes": "false"}})
    scoped = {"project": project}
    try:
        created = api.post("instances", params=scoped, json=instance_config(name))
        # Wait before asserting: cleanup must not race a create in flight.
        created.wait(timeout=120)   # polls /1.0/operations/<id>/wait, no project
        suffix = f"?project={project}" if server is INCUS else ""
        assert created.metadata["resources"]["instances"] == [f"/1.0/instances/{name}{suffix}"]
        assert "?" not in created.operation
        assert api.get("instances", params=scoped).metadata == \
            [f"/1.0/instances/{name}?project={project}"]
        assert api.get(f"instances/{name}", validate=False).status_code == 404
        missing_project = api.get(f"instances/{name}", params={"project": "apitx-nope"},
                                  validate=False)
        assert error_of(missing_project)[3] == \
            ("Instance not found" if server is LXD else "Project not found")
        assert api.get("instances", params={"project": "apitx-nope"}).metadata == []

        api.put(f"instances/{name}/state", params=scoped, json={"action": "start"}).wait(60)
        log = recorded_exec(api, name, ["/bin/true"], **scoped).wait(timeout=30) \
            .metadata["metadata"]["output"]["1"]
        assert "?" not in log
        assert api.get(log, validate=False).status_code == 404
        assert api.get(log, params=scoped).status_code == 200
        assert api.delete(f"projects/{project}", validate=False).data["error"] == \
            "Only empty projects can be removed" + ("." if server is INCUS else "")
    finally:
        state = api.get(f"instances/{name}/state", params=scoped, validate=False)
        if state.status_code == 200:
            if state.metadata["status"] == "Running":
                api.put(f"instances/{name}/state", params=scoped,
                        json={"action": "stop", "force": True}).wait(60)
            api.delete(f"instances/{name}", params=scoped).wait(60)
        api.delete(f"projects/{project}")


# -- what apitx makes of it -------------------------------------------------------


def test_apitx_wait_timeout_raises_operation_timeout(server: Server, api: apitx.API,
                                                    running: str) -> None:
    """Incus answers a wait that timed out as HTTP 200, ``type: error``
    ("context deadline exceeded"), the shape of a failure; apitx asks the
    operation itself, and raises OperationTimeout as on LXD (before, it
    raised APIException, and wait() broke on anything longer than a poll)."""
    started = recorded_exec(api, running, ["/bin/sleep", "3"])
    try:
        with pytest.raises(OperationTimeout):
            started.wait(timeout=1)
    finally:
        api.get(f"{started.operation}/wait", params={"timeout": 30}, validate=False)
