"""apitx.testing: record LXD sessions with vcrpy, replay them with no LXD.

``scenario_*`` functions are run twice by design: under ``pytest --record``
against the live LXD (writing cassettes/), and by default replayed from those
cassettes with a socket path that does not exist. The same assertions hold
both ways, so the cassettes are proven to be faithful recordings.
"""

import os

import pytest

import apitx
from apitx import APIException, APINotFoundException
from apitx.testing import Normaliser, recorder
from vcr.errors import CannotOverwriteExistingCassetteException

from sandbox import NOWHERE_SOCKET, instance_config, remove_instance

live = pytest.mark.live
REPLAY_INSTANCE = "apitx-replay-c1"


def scenario_lifecycle(api: apitx.API) -> None:
    assert api.get("").metadata["api_version"] == "1.0"
    with pytest.raises(APINotFoundException, match="Instance not found"):
        api.get(f"instances/{REPLAY_INSTANCE}")
    created = api.post("instances", json=instance_config(REPLAY_INSTANCE))
    assert created.status_code == 202 and created.operation.startswith("/1.0/operations/")
    assert created.wait(timeout=120).metadata["status"] == "Success"
    api.put(f"instances/{REPLAY_INSTANCE}/state", json={"action": "start"}).wait(60)
    ran = api.post(f"instances/{REPLAY_INSTANCE}/exec", json={
        "command": ["/bin/echo", "hello"], "record-output": True,
        "wait-for-websocket": False, "interactive": False}).wait(30)
    assert ran.metadata["metadata"]["return"] == 0
    stdout = api.get(ran.metadata["metadata"]["output"]["1"])
    assert (stdout.data, stdout.response.content) == (None, b"hello\n")
    with pytest.raises(APIException, match="already exists"):
        api.post("instances", json=instance_config(REPLAY_INSTANCE)).wait(60)
    api.put(f"instances/{REPLAY_INSTANCE}/state",
            json={"action": "stop", "force": True}).wait(60)
    api.delete(f"instances/{REPLAY_INSTANCE}").wait(60)


def test_lifecycle_replays_with_no_lxd(cassette, socket_connects, request):
    context, socket_path = cassette("lifecycle.yaml")
    api = apitx.API.factory(socket_path)
    if socket_path != NOWHERE_SOCKET:  # recording: start from a clean slate
        remove_instance(api, REPLAY_INSTANCE)
    with context:
        scenario_lifecycle(api)
    if socket_path == NOWHERE_SOCKET:
        assert not os.path.exists(socket_path)
        assert socket_connects == []  # replay opened no socket at all


@live
def test_record_then_replay_roundtrip(tmp_path, lxd_socket, socket_connects):
    with recorder(str(tmp_path)).use_cassette("root.yaml"):
        live_root = apitx.API.factory(lxd_socket).get("").metadata
    assert socket_connects == [lxd_socket]
    text = (tmp_path / "root.yaml").read_text()
    assert "<certificate>" in text and "BEGIN CERTIFICATE" not in text
    del socket_connects[:]
    with recorder(str(tmp_path), record_mode="none").use_cassette("root.yaml"):
        replayed = apitx.API.factory(NOWHERE_SOCKET).get("").metadata
    assert socket_connects == []
    assert replayed["api_version"] == live_root["api_version"]
    assert replayed["environment"]["server_version"] == live_root["environment"]["server_version"]


@live
def test_api_used_inside_a_cassette_talks_live_after_it(tmp_path, lxd_socket, socket_connects):
    """Pooled connections made under a cassette must not keep replaying it."""
    api = apitx.API.factory(lxd_socket)
    with recorder(str(tmp_path)).use_cassette("one.yaml"):
        api.get("instances", params={"recursion": 0})
    with recorder(str(tmp_path), record_mode="none").use_cassette("one.yaml"):
        api.get("instances", params={"recursion": 0})
    connects_during_cassettes = len(socket_connects)
    api.get("")  # not in the cassette: must reach the real LXD
    assert len(socket_connects) == connects_during_cassettes + 1


@live
def test_replay_refuses_unrecorded_requests(tmp_path, lxd_socket):
    with recorder(str(tmp_path)).use_cassette("one.yaml"):
        apitx.API.factory(lxd_socket).get("")
    with recorder(str(tmp_path), record_mode="none").use_cassette("one.yaml"):
        # vcrpy 9 says "Can't play back this request", 7 and 8 (all Python 3.9
        # and 3.10 can install) "Can't overwrite existing cassette".
        with pytest.raises(CannotOverwriteExistingCassetteException, match="/1.0/instances"):
            apitx.API.factory(NOWHERE_SOCKET).get("instances")


def test_normaliser_maps_each_uuid_to_one_placeholder():
    normaliser = Normaliser()
    uuid_a = "1c34b923-57c8-4fce-b349-e4a1c61b8803"
    uuid_b = "70eb42bf-5e79-42de-8230-2162e9e8b612"
    body = f'{{"operation": "/1.0/operations/{uuid_a}", "id": "{uuid_b}"}}'.encode()
    response = normaliser.response({"body": {"string": body},
                                    "headers": {"Content-Length": ["99"], "Date": ["x"],
                                                "Content-Type": ["application/json"]}})
    text = response["body"]["string"].decode()
    assert uuid_a not in text and uuid_b not in text
    assert "00000000-0000-4000-8000-000000000001" in text
    assert "00000000-0000-4000-8000-000000000002" in text
    assert response["headers"] == {"Content-Length": [str(len(response["body"]["string"]))],
                                   "Content-Type": ["application/json"]}

    class Request:
        uri = f"http://lxd/1.0/operations/{uuid_a}/wait?timeout=30"

    assert normaliser.request(Request()).uri.endswith("-000000000001/wait?timeout=30")
    # A placeholder seen again (as in replay) stays itself.
    Request.uri = "http://lxd/1.0/operations/00000000-0000-4000-8000-000000000002/wait"
    assert normaliser.request(Request()).uri.endswith("-000000000002/wait")


def test_normaliser_leaves_binary_bodies_byte_for_byte():
    body = b"file content with 1c34b923-57c8-4fce-b349-e4a1c61b8803 and \"2026-01-01T00:00:00Z\""
    response = Normaliser().response({"body": {"string": body}, "headers": {
        "Content-Type": ["application/octet-stream"], "Content-Length": [str(len(body))]}})
    assert response["body"]["string"] == body
