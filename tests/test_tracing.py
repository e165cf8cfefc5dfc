"""apitx._tracing: DEBUG dumps on stderr, through the 'apitx' logger."""

import logging
import subprocess
import sys
import textwrap

import pytest

import apitx
from apitx import _tracing

live = pytest.mark.live


def run_program(source: str, debug: str, socket_path: str) -> subprocess.CompletedProcess:
    """A real program using apitx, with DEBUG set as an operator would."""
    env = {"PATH": "/usr/bin:/bin", "DEBUG": debug, "PYTHONPATH": ":".join(sys.path)}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(source), socket_path],
                          env=env, capture_output=True, text=True, timeout=60)


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
def test_debug_dumps_go_to_stderr_only(lxd_socket, word):
    done = run_program(PROGRAM, word, lxd_socket)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "version 1.0\nerror 400\n"
    assert f"GET unix:{lxd_socket} /1.0\nHTTP/200\n{{" in done.stderr
    # The failing transaction is dumped, with its request body and the error.
    assert f"POST unix:{lxd_socket} /1.0/instances\n{{\n    \"name\": \"Bad Name!\"" in done.stderr
    assert "HTTP/400" in done.stderr
    assert done.stderr.count(_tracing.SEPARATOR) == 2


@live
@pytest.mark.parametrize("word", ["0", "false", "no", "off", ""])
def test_debug_off_words_print_nothing(lxd_socket, word):
    done = run_program(PROGRAM, word, lxd_socket)
    assert (done.stdout, done.stderr) == ("version 1.0\nerror 400\n", "")


def test_dump_is_written_before_validate_raises(hostile, caplog):
    api = apitx.API.factory(hostile.server_address, debug=True)
    with caplog.at_level(logging.DEBUG, logger="apitx"):
        with pytest.raises(apitx.APIException):
            api.get("/error-in-200")
    (record,) = caplog.records
    assert record.getMessage().startswith(
        f"GET unix:{hostile.server_address} /error-in-200\nHTTP/200\n{{\n    \"type\": \"error\"")


def test_debug_off_formats_nothing(hostile, caplog, monkeypatch):
    monkeypatch.delenv("DEBUG", raising=False)
    api = apitx.API.factory(hostile.server_address)
    with caplog.at_level(logging.DEBUG, logger="apitx"):
        api.get("")
    assert caplog.records == []
    assert api.debug is False


def test_application_logging_config_routes_the_dump(hostile, tmp_path):
    """An application that configured logging gets the dump in its own handler,
    and apitx adds no stderr handler of its own."""
    log_file = tmp_path / "app.log"
    program = f"""
        import logging, sys, apitx
        logging.basicConfig(filename={str(log_file)!r}, level=logging.DEBUG)
        apitx.API.factory(sys.argv[1], debug=True).get('')
        print(len(logging.getLogger('apitx').handlers))
    """
    done = run_program(program, "0", hostile.server_address)
    assert done.returncode == 0, done.stderr
    assert (done.stdout, done.stderr) == ("0\n", "")
    assert f"GET unix:{hostile.server_address} /1.0" in log_file.read_text()


@pytest.mark.parametrize("body, shown", [
    (None, ""),
    (b'{"a": [1, 2]}', '{\n    "a": [\n        1,\n        2\n    ]\n}'),
    (b"plain", "plain"),
    (bytes([0xff, 0x00, 0x80]), "<binary 3 bytes>"),
    (iter([b"x"]), "<streamed body, not read>"),
])
def test_render_body(body, shown):
    assert _tracing.render_body(body) == shown


def test_deeply_nested_json_renders_without_raising(hostile_api):
    result = hostile_api.get("/deep-ok")
    assert "HTTP/200" in result.response_summary()
