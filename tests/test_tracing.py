"""apitx._tracing: the switches, where traces go, and what they cost the caller.

Programs are run as real subprocesses with the environment an operator
would set, so stdout/stderr separation, files and TTY colour are observed
for real.
"""

import json
import logging
import os
import pty
import subprocess
import sys
import textwrap

import pytest

import apitx
from apitx._render import SEPARATOR
from apitx._tracing import UNSAFE_NOTICE

from canned import error_in_200, running, succeeded

from sandbox import remove_instance

live = pytest.mark.live


def run_program(source: str, socket_path: str, stderr=subprocess.PIPE,
                **env: str) -> subprocess.CompletedProcess:
    """A real program using apitx, with the environment an operator would set."""
    environ = {"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path), **env}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(source), socket_path],
                          env=environ, stdout=subprocess.PIPE, stderr=stderr, text=True,
                          timeout=60)


PROGRAM = """
    import sys, apitx
    api = apitx.API.factory(sys.argv[1])
    print("version", api.get('').metadata['api_version'])
    try:
        api.post('instances', json={'name': 'Bad Name!', 'source': {'type': 'none'}}).wait()
    except apitx.APIException as exc:
        print("error", exc.status_code)
"""


@live
@pytest.mark.parametrize("word", ["1", "true", "yes", "on"])
def test_debug_traces_go_to_stderr_only(lxd_socket, word):
    done = run_program(PROGRAM, lxd_socket, DEBUG=word)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "version 1.0\nerror 400\n"
    lines = done.stderr.splitlines()
    assert lines[0].startswith("#") and f" unix:{lxd_socket} GET /1.0 " in lines[0]
    assert lines[0].endswith(" ms")
    assert lines[1] == "HTTP/200 OK"
    # The failing transaction is traced, request body and error included.
    post = lines.index(next(line for line in lines if " POST /1.0/instances " in line))
    assert lines[post + 1:post + 4] == ["Content-Type: application/json", "{",
                                        '    "name": "Bad Name!",']
    assert "HTTP/400 Bad Request" in lines
    assert lines.count(SEPARATOR) == 2


@live
@pytest.mark.parametrize("word", ["0", "false", "no", "off", ""])
def test_debug_off_words_print_nothing(lxd_socket, word):
    done = run_program(PROGRAM, lxd_socket, DEBUG=word)
    assert (done.stdout, done.stderr) == ("version 1.0\nerror 400\n", "")


@live
def test_json_format_one_object_per_line(lxd_socket):
    done = run_program(PROGRAM, lxd_socket, DEBUG="1", APITX_DEBUG="json")
    records = [json.loads(line) for line in done.stderr.splitlines()]
    assert [(r["method"], r["path"], r["response"]["status"]) for r in records] == [
        ("GET", "/1.0", 200), ("POST", "/1.0/instances", 400)]
    assert records[1]["request"]["body"]["name"] == "Bad Name!"
    assert records[1]["seq"] == records[0]["seq"] + 1
    assert records[0]["elapsed_ms"] > 0


def test_unknown_format_is_refused_naming_the_choices(hostile, monkeypatch):
    monkeypatch.setenv("APITX_DEBUG", "xml")
    with pytest.raises(ValueError, match="APITX_DEBUG='xml' is not a trace format: use text, "
                                         "json, curl"):
        apitx.API.factory(hostile.server_address, debug=True)


def test_bad_max_body_is_refused(hostile, monkeypatch):
    monkeypatch.setenv("APITX_DEBUG_MAX_BODY", "lots")
    with pytest.raises(ValueError, match="APITX_DEBUG_MAX_BODY='lots'"):
        apitx.API.factory(hostile.server_address, debug=True)


def test_debug_file_appends(hostile, tmp_path):
    trace = tmp_path / "trace.log"
    for _ in range(2):
        done = run_program("import sys, apitx; apitx.API.factory(sys.argv[1]).get('')",
                           hostile.server_address, DEBUG="1", APITX_DEBUG_FILE=str(trace))
        assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert trace.read_text().count(f" unix:{hostile.server_address} GET /1.0 ") == 2


def test_application_logging_config_routes_the_trace(hostile, tmp_path):
    """An application that configured logging gets the trace in its own handler,
    and apitx adds no stderr handler of its own."""
    log_file = tmp_path / "app.log"
    program = f"""
        import logging, sys, apitx
        logging.basicConfig(filename={str(log_file)!r}, level=logging.DEBUG)
        apitx.API.factory(sys.argv[1], debug=True).get('')
        print(len(logging.getLogger('apitx').handlers))
    """
    done = run_program(program, hostile.server_address, DEBUG="0")
    assert done.returncode == 0, done.stderr
    assert (done.stdout, done.stderr) == ("0\n", "")
    assert f" unix:{hostile.server_address} GET /1.0 " in log_file.read_text()


TWO_APIS = """
    import sys, apitx
    for _ in range(2):
        apitx.API.factory(sys.argv[1], debug=True).get('')
"""


def test_one_stderr_handler_however_many_apis(hostile):
    done = run_program(TWO_APIS, hostile.server_address)
    assert done.stderr.count("HTTP/200 Whatever") == 2  # not 1 + 2


def run_on_a_terminal(socket_path: str, **env: str) -> str:
    """Run TWO_APIS with stderr on a real pseudo-terminal; return what it showed."""
    controller, terminal = pty.openpty()
    try:
        run_program(TWO_APIS, socket_path, stderr=terminal, **env)
        os.close(terminal)
        chunks = []
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the terminal side is closed and drained
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks).decode()
    finally:
        os.close(controller)


def test_colour_on_a_terminal_only(hostile):
    assert "\033[1m#" in run_on_a_terminal(hostile.server_address)
    assert "\033[32mHTTP/200 Whatever" in run_on_a_terminal(hostile.server_address)
    assert "\033[" not in run_on_a_terminal(hostile.server_address, NO_COLOR="1")
    assert "\033[" not in run_program(TWO_APIS, hostile.server_address).stderr


def test_unsafe_says_so_on_the_first_line_once(hostile):
    program = """
        import sys, apitx
        api = apitx.API.factory(sys.argv[1], debug=True)
        api.post('/echo', json={'password': 'PLANTED-1'}, headers={'Authorization': 'PLANTED-2'})
        api.get('')
    """
    unsafe = run_program(program, hostile.server_address, APITX_DEBUG_UNSAFE="1").stderr
    assert unsafe.splitlines()[0] == UNSAFE_NOTICE
    assert unsafe.count(UNSAFE_NOTICE) == 1
    assert "PLANTED-1" in unsafe and "PLANTED-2" in unsafe
    # The session keeps the cookie /echo set and sends it back with the GET.
    assert "Cookie: session=PLANTED-COOKIE" in unsafe
    safe = run_program(program, hostile.server_address).stderr
    assert "PLANTED" not in safe and UNSAFE_NOTICE not in safe
    assert "Authorization: <redacted>" in safe and "Cookie: <redacted>" in safe
    assert safe.count('"password": "<redacted>"') == 2  # request and response bodies


def test_trace_is_written_before_validate_raises(canned, caplog):
    canned.answers["/1.0/x"] = error_in_200(403, "refused inside a 200")
    api = apitx.API.factory(transport=canned.transport, debug=True)
    with caplog.at_level(logging.DEBUG, logger="apitx"):
        with pytest.raises(apitx.APIException):
            api.get("x")
    (record,) = caplog.records
    lines = record.getMessage().splitlines()
    assert " GET /1.0/x " in lines[0]
    assert lines[1:3] == ["HTTP/200 OK", "{"]


def test_tracing_off_formats_nothing(hostile, caplog, monkeypatch):
    monkeypatch.delenv("DEBUG", raising=False)
    api = apitx.API.factory(hostile.server_address)
    with caplog.at_level(logging.DEBUG, logger="apitx"):
        api.get("")
    assert caplog.records == []
    assert (api.debug, api.tracer) == (False, None)


def test_every_poll_is_a_transaction_with_the_total_waited(canned, caplog):
    slowly = canned.operation("op-slowly", running("op-slowly"), running("op-slowly"),
                              succeeded("op-slowly"))
    api = apitx.API.factory(transport=canned.transport, debug=True)
    with caplog.at_level(logging.DEBUG, logger="apitx"):
        assert api.get(slowly).wait(timeout=10).metadata["status"] == "Success"
    headers = [record.getMessage().splitlines()[0] for record in caplog.records]
    polls = [h for h in headers if "/wait?timeout=" in h]
    assert len(polls) == 3
    waited = [float(h.rsplit("(waited ", 1)[1].split(" ms")[0]) for h in polls]
    assert waited == sorted(waited) and waited[0] > 0


def test_exception_carries_the_redacted_transaction(hostile):
    api = apitx.API.factory(hostile.server_address)
    with pytest.raises(apitx.APIException) as info:
        api.post("/html-502", json={"password": "PLANTED"}, headers={"X-Auth-Token": "PLANTED"})
    assert "\n" not in str(info.value)
    transaction = info.value.transaction
    assert " POST /html-502 " in transaction.splitlines()[0]
    assert "HTTP/502 Whatever" in transaction and "PLANTED" not in transaction
    assert transaction.count("<redacted>") == 2


@live
def test_streamed_bodies_are_not_read_and_arrive_whole(api, lxd_socket, instance, caplog,
                                                       tmp_path):
    payload = os.urandom(3 * 1024 * 1024) + b"end"
    source = tmp_path / "push.bin"
    source.write_bytes(payload)
    traced = apitx.API.factory(lxd_socket, debug=True)
    with caplog.at_level(logging.DEBUG, logger="apitx"):
        with open(source, "rb") as stream:
            traced.post(f"instances/{instance}/files", params={"path": "/root/push.bin"},
                        data=stream, headers={"X-LXD-type": "file",
                                              "Content-Type": "application/octet-stream"})
        pulled = traced.get(f"instances/{instance}/files", params={"path": "/root/push.bin"},
                            stream=True)
        received = b"".join(pulled.response.iter_content(65536))
    assert received == payload
    push_trace, pull_trace = (record.getMessage() for record in caplog.records)
    assert "application/octet-stream\n<streamed body, not read>\nHTTP/200" in push_trace
    assert pull_trace.split("\n", 1)[1].startswith("HTTP/200 OK\n<streamed body, not read>")


@live
def test_curl_lines_run_as_they_are_and_get_the_same_json(api, lxd_socket, instance):
    program = f"""
        import json, sys, apitx
        api = apitx.API.factory(sys.argv[1])
        answers = [api.get('instances/{instance}').data['metadata'],
                   api.get('instances', params={{'recursion': 1, 'filter': 'name eq {instance}'}})
                   .data['metadata']]
        print(json.dumps(answers))
    """
    done = run_program(program, lxd_socket, DEBUG="1", APITX_DEBUG="curl")
    assert done.returncode == 0, done.stderr
    apitx_answers = json.loads(done.stdout)
    commands = done.stderr.splitlines()
    assert len(commands) == 2 and all(c.startswith("curl --unix-socket ") for c in commands)
    for command, expected in zip(commands, apitx_answers):
        ran = subprocess.run(command, shell=True, capture_output=True, timeout=30, check=True)
        curl_answer = json.loads(ran.stdout)["metadata"]
        for volatile in ("last_used_at",):
            for item in (curl_answer if isinstance(curl_answer, list) else [curl_answer]):
                item.pop(volatile, None)
            for item in (expected if isinstance(expected, list) else [expected]):
                item.pop(volatile, None)
        assert curl_answer == expected


@live
def test_result_curl_posts_what_apitx_posted(api, instance_name):
    created = api.post("instances", json={"name": instance_name, "source": {"type": "none"}})
    command = created.curl()
    try:
        created.wait(60)
        api.delete(f"instances/{instance_name}").wait(60)
        # The same command, run by the shell, creates the same instance again.
        ran = subprocess.run(command, shell=True, capture_output=True, timeout=30, check=True)
        operation = json.loads(ran.stdout)["operation"]
        api.get(f"{operation}/wait", params={"timeout": 30})
        assert api.get(f"instances/{instance_name}").metadata["name"] == instance_name
    finally:
        remove_instance(api, instance_name)


@pytest.mark.parametrize("trace_format", ["json", "curl"])
def test_unsafe_keeps_json_and_curl_traces_machine_readable(hostile, trace_format):
    program = "import sys, apitx; apitx.API.factory(sys.argv[1], debug=True).get('')"
    lines = run_program(program, hostile.server_address, APITX_DEBUG=trace_format,
                        APITX_DEBUG_UNSAFE="1").stderr.splitlines()
    if trace_format == "json":
        assert json.loads(lines[0])["unsafe"] is True and len(lines) == 1
    else:
        assert lines == [f"# {UNSAFE_NOTICE}",
                         f"curl --unix-socket {hostile.server_address} http://lxd/1.0"]


def test_summaries_are_redacted_and_readable(hostile_api, hostile):
    result = hostile_api.post("/echo", params={"token": "PLANTED-Q"},
                              json={"name": "x", "password": "PLANTED-B"},
                              headers={"Authorization": "PLANTED-H"})
    request = result.request_summary().splitlines()
    assert request[:3] == [f"POST unix:{hostile.server_address} /echo?token=<redacted>",
                           "Authorization: <redacted>", "Content-Type: application/json"]
    assert request[3:] == ["{", '    "name": "x",', '    "password": "<redacted>"', "}"]
    response = result.response_summary()
    assert response.startswith("HTTP/200 Whatever\n{\n") and '"<redacted>"' in response
    assert "PLANTED" not in result.request_summary() + response


@live
def test_a_traced_binary_push_replays_byte_for_byte_with_curl(api, lxd_socket, instance, caplog,
                                                             monkeypatch):
    payload = bytes(range(256)) * 8 + b"\x00'%\\ end"
    monkeypatch.setenv("APITX_DEBUG", "curl")
    traced = apitx.API.factory(lxd_socket, debug=True)
    files = f"instances/{instance}/files"
    with caplog.at_level(logging.DEBUG, logger="apitx"):
        traced.post(files, params={"path": "/root/first.bin"}, data=payload,
                    headers={"X-LXD-type": "file"})
    (line,) = [record.getMessage() for record in caplog.records]
    replay = line.replace("first.bin", "second.bin")
    subprocess.run(replay, shell=True, capture_output=True, timeout=30, check=True)
    for name in ("first.bin", "second.bin"):
        pulled = api.get(files, params={"path": f"/root/{name}"}, stream=True)
        assert b"".join(pulled.iter_content()) == payload


def test_a_trace_file_that_cannot_be_opened_is_refused_when_the_api_is_made(hostile, tmp_path):
    missing = tmp_path / "no-such-dir" / "trace.log"
    with pytest.raises(apitx.SettingsError, match="APITX_DEBUG_FILE=.*No such file or directory"):
        apitx.API.factory(hostile.server_address,
                          trace=apitx.TraceSettings(enabled=True, file=str(missing)))


def test_a_trace_file_that_fails_to_write_says_so_once(hostile):
    # /dev/full: every write fails with ENOSPC. Before, logging printed a
    # traceback for every record.
    done = run_program("import sys, apitx\n"
                       "api = apitx.API.factory(sys.argv[1])\n"
                       "for _ in range(3): api.get('')\n",
                       hostile.server_address, DEBUG="1", APITX_DEBUG_FILE="/dev/full")
    assert done.returncode == 0
    assert done.stderr.count("\n") == 1 and "No space left on device" in done.stderr


# -- issue 16: exec secrets and LXD's own log lines, traced live ---------------------

import re  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

from live import TARGETS, WAYS  # noqa: E402

#: An exec websocket's secret as LXD logs it (its "Handling API request" line).
WEBSOCKET_SECRET = re.compile(r"websocket\?secret=([0-9a-f]{64})")


def traced_api(live, target: str) -> apitx.API:
    """A tracing API on ``target`` (see tests/live.py)."""
    return live.new_api(target, debug=True)


@live
@pytest.mark.parametrize("target", TARGETS)
def test_exec_secrets_stay_out_of_traces_results_and_errors(live, target, caplog):
    instance = live.instance(WAYS[target][0].name)
    api = traced_api(live, target)
    argv = ["sh", "-c", "sleep 30", "sh", "--password", "PLANTED-A", "--token=PLANTED-B",
            "https://u:PLANTED-C@example.com/"]
    env = {"DB_PASS": "PLANTED-D", "DATABASE_URL": "postgres://app:PLANTED-E@db/shop",
           "ENCRYPTION_KEY": "PLANTED-F", "LANG": "C"}
    with caplog.at_level(logging.DEBUG, logger="apitx"):
        with pytest.raises(apitx.ExecTimeout) as timed_out:
            api.exec(instance, argv, env=env, timeout=1)
        result = api.exec(instance, ["sh", "-c", "echo no >&2; exit 3", "sh", "--token",
                                     "PLANTED-G"])
        with pytest.raises(apitx.ExecError) as failed:
            result.check()
    trace = "\n".join(record.getMessage() for record in caplog.records)
    # The websocket secrets LXD gave this exec: the trace must not show them either.
    fds = timed_out.value.result.metadata["metadata"]["fds"]
    assert set(fds) == {"0", "1", "2", "control"}
    for shown in (trace, str(timed_out.value), repr(timed_out.value),
                  timed_out.value.transaction, repr(result), str(failed.value)):
        assert "PLANTED" not in shown
        assert not any(secret in shown for secret in fds.values())
    # What is not a secret stays readable, and the caller keeps the real command.
    assert '"LANG": "C"' in trace and "postgres://<redacted>@db/shop" in trace
    assert str(timed_out.value).startswith("sh -c 'sleep 30' sh --password '<redacted>' ")
    assert str(failed.value).endswith(" exited with 3: no")
    assert timed_out.value.command == argv and result.command[-1] == "PLANTED-G"


@live
def test_logging_events_are_traced_without_exec_secrets(server, live, caplog):
    """LXD logs every request it handles, exec websockets' ``?secret=`` included:
    a traced ``logging`` stream must show those lines without the secrets."""
    instance = live.instance(server.name)
    traced = apitx.API.factory(server.socket, debug=True)
    secrets = []
    with caplog.at_level(logging.DEBUG, logger="apitx"):
        with traced.events(types=["logging"]) as stream:
            assert stream.confirm(10)
            live.api(server.name).exec(instance, ["true"]).check()
            until = time.monotonic() + 30  # a bound, not an expectation: 4 come at once
            while len(secrets) < 4:  # this exec's four websockets, at least
                event = stream.next_event(timeout=max(0.0, until - time.monotonic()))
                if event is None:
                    break
                secrets += WEBSOCKET_SECRET.findall(json.dumps(event.metadata))
    assert len(secrets) >= 4, "LXD logged no exec websocket: nothing was tested"
    trace = "\n".join(record.getMessage() for record in caplog.records)
    assert not any(secret in trace for secret in secrets)
    assert "/websocket?secret=<redacted>" in trace


@live
def test_cli_events_trace_logging_without_exec_secrets(server, live):
    """``DEBUG=1 apitx events --type logging``: the events on stdout are the
    server's own (with the secrets LXD logged, as ``lxc monitor`` shows them);
    the trace on stderr must not carry those secrets."""
    instance = live.instance(server.name)
    cli = subprocess.Popen(
        [sys.executable, "-m", "apitx", "events", "-e", server.socket, "--type", "logging",
         "--timeout", "60"],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path), "DEBUG": "1"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = threading.Event()

    def exec_until_seen() -> None:
        # The stream may be registered after our first exec: exec again
        # until its log lines arrive (bounded).
        for _ in range(20):
            live.api(server.name).exec(instance, ["true"])
            if seen.wait(1):
                return

    execs = threading.Thread(target=exec_until_seen, daemon=True)
    execs.start()
    secrets = []
    try:
        for line in cli.stdout:
            secrets += WEBSOCKET_SECRET.findall(line)
            if len(secrets) >= 4:
                break
    finally:
        seen.set()
        cli.send_signal(signal.SIGINT)
        rest, trace = cli.communicate(timeout=30)
        execs.join(60)
    secrets += WEBSOCKET_SECRET.findall(rest)
    assert len(secrets) >= 4, "LXD logged no exec websocket: nothing was tested"
    assert " upgraded to a websocket " in trace
    assert not any(secret in trace for secret in secrets)
    assert "/websocket?secret=<redacted>" in trace
