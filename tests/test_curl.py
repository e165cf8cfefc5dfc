"""apitx._curl: a request as a curl command that runs as it is.

The rendering is checked word by word (``shlex.split`` undoes the quoting a
shell would), and live: the printed commands are run with the real curl
against the real LXD, over the socket and over HTTPS.
"""

from __future__ import annotations

import io
import json
import shlex
import shutil
import subprocess

import pytest

import apitx

from sandbox import HTTPS_OPTIONS, SANDBOX_HTTPS

live = pytest.mark.live

SOCKET = "/var/lib/lxd/unix.socket"


def render(api: apitx.API, method: str, path: str, **kwargs) -> str:
    return api.curl(method, path, **kwargs)


@pytest.fixture
def socket_api():
    with apitx.API.factory(SOCKET) as api:
        yield api


def test_socket_get_uses_unix_socket_and_curls_own_url(socket_api):
    assert render(socket_api, "GET", "instances") == (
        "curl --unix-socket /var/lib/lxd/unix.socket http://lxd/1.0/instances")


def test_post_json_body_and_headers_survive_the_shell(socket_api):
    body = {"name": "it's \"quoted\" $HOME `x`", "config": {"user.note": "a\nb"}}
    command = render(socket_api, "POST", "instances", json=body, params={"project": "p 1"},
                     headers={"X-Trace": "a b; c"})
    assert shlex.split(command) == [
        "curl", "--unix-socket", SOCKET, "-X", "POST", "-H", "X-Trace: a b; c",
        "-H", "Content-Type: application/json", "--data-binary", json.dumps(body),
        "http://lxd/1.0/instances?project=p+1"]


def test_head_uses_curls_head_option(socket_api):
    # curl -X HEAD waits for a body that never comes.
    assert shlex.split(render(socket_api, "HEAD", "instances"))[3] == "--head"


def test_requests_default_headers_are_left_to_curl_unless_changed(socket_api):
    words = shlex.split(render(socket_api, "GET", "", headers={"Accept": "application/json"}))
    assert words == ["curl", "--unix-socket", SOCKET, "-H", "Accept: application/json",
                     "http://lxd/1.0"]


def test_https_adds_client_certificate_and_trusted_server_certificate():
    with apitx.API.factory("https://10.0.0.5:8443", cert=("c.crt", "c.key"),
                           verify="server.crt") as api:
        assert render(api, "GET", "") == (
            "curl --cert c.crt --key c.key --cacert server.crt https://10.0.0.5:8443/1.0")
    with apitx.API.factory("https://h:8443", cert="both.pem", verify=False) as api:
        assert render(api, "GET", "") == "curl --cert both.pem --insecure https://h:8443/1.0"


def test_open_file_body_is_referenced_by_its_path(socket_api, tmp_path):
    path = tmp_path / "image.tar.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00 not text")
    with open(path, "rb") as body:
        words = shlex.split(render(socket_api, "POST", "images", data=body))
        assert body.tell() == 0  # nothing read: curl reads the file itself
    assert words[words.index("--data-binary") + 1] == f"@{path}"
    # requests sent no Content-Type: curl must not add its form-urlencoded one.
    assert words[words.index("--data-binary") - 2:words.index("--data-binary")] == \
        ["-H", "Content-Type:"]


def test_binary_bytes_body_is_piped_from_printf(socket_api):
    line = render(socket_api, "POST", "instances/c1/files?path=/x", data=b"\xff\xfe\x00\x01")
    assert line.startswith("printf '\\377\\376\\000\\001' | curl --unix-socket ")
    assert "--data-binary @- " in line


def test_binary_bytes_over_the_body_limit_are_refused_with_what_to_do():
    settings = apitx.TraceSettings(render=apitx.RenderOptions(max_body=3))
    with apitx.API.factory(SOCKET, trace=settings) as api, \
            pytest.raises(apitx.RequestError, match=r"4 bytes of binary data.*--data-binary @FILE"):
        render(api, "POST", "instances/c1/files?path=/x", data=b"\xff\xfe\x00\x01")


def test_stream_without_a_file_name_is_refused(socket_api):
    with pytest.raises(ValueError, match=r"a stream \(BytesIO\) with no file name"):
        render(socket_api, "POST", "images", data=io.BytesIO(b"abc"))


# -- the commands run as they are ---------------------------------------------------

def run_curl(command: str) -> bytes:
    if shutil.which("curl") is None:
        pytest.fail("curl is missing: apt-get install -y curl (these tests run its commands)")
    done = subprocess.run(command + " --silent --show-error --fail-with-body", shell=True,
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


@live
def test_socket_command_runs_and_answers_as_the_library_does(api, instance):
    path = f"instances/{instance}"
    command = render(api, "GET", path, params={"recursion": "1"})
    assert json.loads(run_curl(command))["metadata"]["name"] == instance
    files = f"instances/{instance}/files?path=/tmp/from-curl"
    posted = render(api, "POST", files, data="sent by curl\n",
                    headers={"X-LXD-type": "file", "Content-Type": "application/octet-stream"})
    run_curl(posted)
    assert api.get(files).response.content == b"sent by curl\n"


@live
def test_file_body_command_pushes_the_exact_bytes(api, instance, tmp_path):
    payload = bytes(range(256)) * 64
    source = tmp_path / "payload.bin"
    source.write_bytes(payload)
    files = f"instances/{instance}/files?path=/tmp/from-curl.bin"
    with open(source, "rb") as body:
        command = render(api, "POST", files, data=body, headers={"X-LXD-type": "file"})
    run_curl(command)
    assert api.get(files).response.content == payload


@live
def test_https_command_runs_with_the_client_certificate(lxd_socket):  # lxd_socket: sandbox up
    with apitx.API.factory(SANDBOX_HTTPS, **HTTPS_OPTIONS) as api:
        answer = json.loads(run_curl(render(api, "GET", "")))
    assert answer["metadata"]["auth"] == "trusted"
