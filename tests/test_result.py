"""apitx._result: data, validate(), validate_metadata() and wait().

Against the live LXD where LXD can show the behaviour; against canned answers
(MockTransport, tests/canned.py) for the envelopes it cannot (other LXD
versions' failure encodings, odd error fields); against the hostile server
for what only a socket gives (non-JSON bodies, pathological nesting).
"""

import pytest

import apitx

from apitx import APIException, APINotFoundException, OperationTimeout
from apitx.testing import Answer

from canned import FAILED_WAITS, NOT_AN_OPERATION, error_in_200, succeeded
from sandbox import instance_config, remove_instance, start_exec

live = pytest.mark.live


# -- data never raises ---------------------------------------------------------

@pytest.mark.parametrize("path, content", [
    ("/text", b"plain text, not JSON\n"),
    ("/binary", bytes(range(256))),
    ("/empty", b""),
])
def test_non_json_bodies_give_data_none_and_keep_bytes(hostile_api, path, content):
    result = hostile_api.get(path)
    assert result.data is None
    assert result.metadata is None and result.type is None and result.operation is None
    assert result.response.content == content


def test_html_error_from_a_proxy_is_an_api_exception_with_a_snippet(hostile_api):
    with pytest.raises(APIException) as info:
        hostile_api.get("/html-502")
    assert info.value.status_code == 502
    assert "Bad Gateway" in info.value.error
    assert "\n" not in str(info.value)
    assert info.value.result.data is None


# -- validate() ----------------------------------------------------------------

def test_type_error_inside_http_200_raises(canned, canned_api):
    canned.answers["/1.0/x"] = error_in_200(403, "refused inside a 200")
    with pytest.raises(APIException, match="refused inside a 200") as info:
        canned_api.get("x")
    assert info.value.status_code == 403


def test_null_metadata_without_error_raises_api_exception_not_type_error(canned, canned_api):
    canned.answers["/1.0/x"] = Answer(500, {"type": "error", "metadata": None})
    with pytest.raises(APIException) as info:
        canned_api.get("x")
    assert info.value.status_code == 500
    assert '"metadata": null' in info.value.error


def test_odd_error_code_falls_back_to_the_http_status(canned, canned_api):
    canned.answers["/1.0/x"] = Answer(500, {"type": "error", "error": "odd", "error_code": "500"})
    result = canned_api.get("x", validate=False)
    assert result.ok is False
    with pytest.raises(APIException, match="odd") as info:
        result.validate()
    assert info.value.status_code == 500


def test_error_code_404_in_body_is_not_found(canned, canned_api):
    canned.answers["/1.0/x"] = error_in_200(404, "gone")
    with pytest.raises(APINotFoundException, match="gone"):
        canned_api.get("x")


def test_validate_returns_self_so_calls_chain(canned, canned_api):
    canned.answers["/1.0"] = Answer.sync({"api_version": "1.0"})
    result = canned_api.get("", validate=False)
    assert result.validate() is result


def test_validate_false_returns_errors_for_branching(hostile_api):
    result = hostile_api.get("/html-502", validate=False)
    assert result.ok is False
    assert result.status_code == 502
    assert hostile_api.get("/1.0", validate=False).ok is True


def test_deep_metadata_does_not_recurse(hostile_api):
    with pytest.raises(APIException, match="deep failure") as info:
        hostile_api.get("/deep")
    assert info.value.status_code == 400
    assert hostile_api.get("/deep-ok").data["type"] == "sync"


def test_deep_failure_is_caught_from_deep_in_the_callers_stack(hostile_api):
    """The JSON decoder's recursion shares the limit with the caller's frames."""
    def descend(levels):
        return descend(levels - 1) if levels else hostile_api.get("/deep")

    with pytest.raises(APIException, match="deep failure"):
        descend(400)


def test_validate_metadata_walks_lists_of_operations(canned, canned_api):
    canned.answers["/1.0"] = Answer.sync({"api_version": "1.0"})
    result = canned_api.get("")
    ops = [{"status_code": 200}, {"status_code": 103, "metadata": [{"status_code": 401,
                                                                      "err": "cancelled"}]}]
    with pytest.raises(APIException, match="cancelled"):
        result.validate_metadata({"metadata": ops})
    result.validate_metadata({"metadata": ops[:1], "failure": [{"status_code": 400}]})


# -- wait() with other LXD versions' failure encodings ---------------------------

@pytest.mark.parametrize("op_id, message", [
    ("fail-sync", "failed inside"),
    ("fail-status", "failed by status"),
    ("fail-type", "failed by type"),
])
def test_wait_raises_for_every_failure_encoding(canned, canned_api, op_id, message):
    started = canned_api.get(canned.operation(op_id, FAILED_WAITS[op_id]))
    assert started.operation == f"/1.0/operations/{op_id}"
    with pytest.raises(APIException, match=message) as info:
        started.wait(timeout=5)
    assert info.value.status_code == 400


def test_wait_refuses_an_answer_that_is_not_an_operation(canned, canned_api):
    with pytest.raises(APIException, match="the answer to a wait is not an operation"):
        canned_api.get(canned.operation("not-op", NOT_AN_OPERATION)).wait(timeout=5)


def test_wait_returns_final_success(canned, canned_api):
    done = canned_api.get(canned.operation("op-ok", succeeded("op-ok"))).wait()
    assert done.metadata["status"] == "Success"
    assert canned.targets()[-1] == "/1.0/operations/op-ok/wait?timeout=30"
    assert canned.transport.requests[-1].method == "GET"


# -- the real LXD ----------------------------------------------------------------

@live
def test_sync_result_attributes(api):
    result = api.get("")
    assert result.request.url.endswith("/1.0")
    assert (result.status_code, result.ok, result.type) == (200, True, "sync")
    assert result.operation is None
    assert result.metadata["api_version"] == "1.0"
    assert result.wait() is result


@live
def test_lifecycle_create_start_exec_stop_delete(api, instance_name):
    created = api.post("instances", json=instance_config(instance_name))
    assert created.status_code == 202 and created.type == "async"
    assert created.operation.startswith("/1.0/operations/")
    try:
        assert created.wait(timeout=120).metadata["status"] == "Success"
        api.put(f"instances/{instance_name}/state", json={"action": "start"}).wait(60)
        assert api.get(f"instances/{instance_name}").metadata["status"] == "Running"
        ran = api.post(f"instances/{instance_name}/exec", json={
            "command": ["/bin/sh", "-c", "echo out; exit 3"], "record-output": True,
            "wait-for-websocket": False, "interactive": False}).wait(30)
        # A command that exits non-zero is a success of the operation.
        assert ran.metadata["metadata"]["return"] == 3
        log = api.get(ran.metadata["metadata"]["output"]["1"])
        assert log.data is None and log.response.content == b"out\n"
        api.put(f"instances/{instance_name}/state",
                json={"action": "stop", "force": True}).wait(60)
        assert api.get(f"instances/{instance_name}").metadata["status"] == "Stopped"
        api.delete(f"instances/{instance_name}").wait(60)
        with pytest.raises(APINotFoundException, match="Instance not found"):
            api.get(f"instances/{instance_name}")
    finally:
        remove_instance(api, instance_name)


@live
def test_failing_operation_raises_with_lxd_err(api, instance):
    # A duplicate name is accepted (202) and fails inside the operation.
    started = api.post("instances", json=instance_config(instance))
    assert started.status_code == 202
    with pytest.raises(APIException) as info:
        started.wait(timeout=60)
    assert info.value.status_code == 400
    # The server's own words: LXD 5.0 and Incus 6.0 word a duplicate differently.
    assert {"lxd": "already exists", "incus": "UNIQUE constraint failed"}[
        api.server.name] in info.value.error
    assert info.value.error in str(info.value)


@live
def test_exec_of_missing_command_is_a_failure(api, instance):
    started = start_exec(api, instance, "/no/such/command")
    with pytest.raises(APIException, match="Command not found") as info:
        started.wait(30)
    assert info.value.result.metadata["metadata"]["return"] == 127


@live
def test_wait_timeout_raises_operation_timeout_never_returns_running(api, instance):
    started = start_exec(api, instance, "/bin/sleep", "4")
    with pytest.raises(OperationTimeout) as info:
        started.wait(timeout=1)
    # Given up while the 4 s command still ran (how close to 1 s: bench/deadlines.py).
    assert info.value.result.metadata["status"] == "Running"
    assert started.operation in str(info.value)
    assert isinstance(info.value, TimeoutError)
    # The same operation, waited on again, finishes.
    assert started.wait(timeout=30).metadata["metadata"]["return"] == 0


@live
def test_wait_timeout_zero_gives_up_at_once(api, instance):
    """The one request it makes is counted in tests/test_mock.py."""
    started = start_exec(api, instance, "/bin/sleep", "3")
    with pytest.raises(OperationTimeout) as info:
        started.wait(timeout=0)
    assert info.value.result.metadata["status"] == "Running"
    started.wait(timeout=30)


def test_wait_refuses_negative_timeout(canned, canned_api):
    with pytest.raises(ValueError, match="timeout=-1"):
        canned_api.get(canned.operation("op-ok", succeeded("op-ok"))).wait(timeout=-1)


@live
def test_an_operation_fetched_by_url_can_be_waited_on(api, instance):
    started = start_exec(api, instance, "/bin/sleep", "1")
    fetched = api.get(started.operation)
    assert (fetched.type, fetched.operation) == ("sync", started.operation)
    assert fetched.metadata["status"] == "Running"
    done = fetched.wait(timeout=30)
    assert done.metadata["status"] == "Success"
    assert done.wait() is done  # finished: nothing more to wait for


@live
def test_a_long_poll_outlasts_a_short_read_timeout(lxd_socket, api, instance):
    """Each poll's read timeout exceeds its server-side timeout, whatever the
    API's own read timeout: here 2 s, for an operation that takes 4."""
    started = start_exec(api, instance, "/bin/sleep", "4")
    short = apitx.API.factory(lxd_socket, timeout=apitx.Timeout(connect=5, read=2))
    assert short.get(started.operation).wait(timeout=30).metadata["status"] == "Success"
