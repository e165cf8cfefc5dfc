"""apitx._resource: navigation builds paths, sends nothing, and calls API.request."""

import copy
import logging
import pickle
import uuid

import pytest

import apitx
from apitx import APIException, APINotFoundException, APITimeoutError, Resource

from sandbox import instance_not_found
from traces import traced_requests

live = pytest.mark.live


@pytest.fixture
def offline():
    """An API whose socket does not exist: building paths must never need it."""
    with apitx.API.factory("/nonexistent/apitx-nav.socket") as api:
        yield api


def test_attributes_items_and_slash_make_segments(offline):
    assert str(offline.storage_pools["default"].volumes) == "/1.0/storage-pools/default/volumes"
    assert str(offline / "instances" / "c1" / "state") == "/1.0/instances/c1/state"
    assert str(offline.instances["my_name"]) == "/1.0/instances/my_name"  # items keep '_'
    assert str(offline.images.aliases["x"]) == "/1.0/images/aliases/x"
    assert str(offline.operations[7]) == "/1.0/operations/7"


@pytest.mark.parametrize("name, segment", [
    ("a/b", "a%2Fb"), ("two words", "two%20words"), ("été", "%C3%A9t%C3%A9"),
    ("q?x=1#f", "q%3Fx%3D1%23f"), ("..", "%2E%2E"),
    (".", "%2E"), ("%2F", "%252F"),
])
def test_items_are_one_quoted_segment(offline, name, segment):
    assert str(offline.instances[name]) == f"/1.0/instances/{segment}"


def test_method_names_are_reachable_as_segments(offline):
    assert str(offline["get"]) == "/1.0/get"
    assert str(offline / "delete") == "/1.0/delete"
    assert str(offline.instances["get"].state) == "/1.0/instances/get/state"
    assert str(offline.instances / "put") == "/1.0/instances/put"
    # ...while the attribute is the method, on the API and on a Resource alike.
    assert offline.get.__self__ is offline
    assert offline.instances.get.__func__ is Resource.get


def test_underscore_names_raise_attribute_error(offline):
    res = offline.instances
    for target in (offline, res):
        with pytest.raises(AttributeError):
            target._private
        assert not hasattr(target, "__length_hint__")
        assert not hasattr(target, "_anything")


def test_copy_pickle_equality_and_hash(offline):
    res = offline.storage_pools["default"]
    assert copy.copy(res) == res and hash(copy.copy(res)) == hash(res)
    assert str(copy.deepcopy(res)) == str(res)
    clone = pickle.loads(pickle.dumps(res))
    assert str(clone) == str(res) and clone._api is not res._api
    assert res != offline.storage_pools["other"]
    assert res != "/1.0/storage-pools/default"


def test_repr_shows_the_path_and_dir_the_methods(offline):
    assert repr(offline.instances["a b"]) == (
        "<Resource unix:/nonexistent/apitx-nav.socket /1.0/instances/a%20b>")
    assert dir(offline.instances) == ["delete", "get", "head", "patch", "post", "put"]


def test_not_iterable(offline):
    # __getitem__ would otherwise make iter() call [0], [1], ... forever.
    with pytest.raises(TypeError):
        iter(offline.instances)
    with pytest.raises(TypeError):
        iter(offline)
    with pytest.raises(TypeError):
        "c1" in offline.instances  # noqa: B015


@pytest.mark.parametrize("bad, error", [
    ("", ValueError), (None, TypeError), (True, TypeError), (1.5, TypeError), (b"x", TypeError),
])
def test_bad_items_are_refused_with_a_clear_error(offline, bad, error):
    with pytest.raises(error, match="path segment"):
        offline.instances[bad]


def test_no_version_prefix():
    with apitx.API.factory("/nonexistent/x.socket", default_version=None) as api:
        assert str(api["1.0"].instances) == "/1.0/instances"


@live
def test_building_sends_nothing(api, socket_connects):
    res = api.storage_pools["default"].volumes["custom"]["x"].state
    repr(res), str(res), dir(res), hasattr(res, "_x")
    assert socket_connects == []


@live
def test_calls_go_through_api_request_and_its_trace(lxd_socket, server, caplog):
    caplog.set_level(logging.DEBUG, logger="apitx")
    with apitx.API.factory(lxd_socket, debug=True) as api:
        pools = api.storage_pools.get(params={"recursion": 1})
        missing = api.instances["get"].get(validate=False)
    assert any(p["name"] == "default" for p in pools.metadata)
    assert missing.status_code == 404
    assert missing.data["error"] == instance_not_found(server.name, "get")
    assert traced_requests(caplog) == ["GET /1.0/storage-pools?recursion=1",
                                       "GET /1.0/instances/get"]


@live
def test_odd_names_stay_one_segment(api):
    # LXD answers 404 "not found" for an unknown route and "Instance not
    # found" for a route it knows: the answer tells how the path was split.
    for name in ("two words", "été", "get", "q?x=1"):
        with pytest.raises(APINotFoundException, match="Instance not found"):
            api.instances[name].get()
    # A '/' inside a name reaches the instance route as one segment too, which
    # refuses it as a name instead of looking for /instances/a/b.
    with pytest.raises(APIException, match="Invalid instance name"):
        api.instances["a/b"].get()
    with pytest.raises(APINotFoundException, match="^GET .* /1.0/instances/a/b: not found$"):
        api.get("instances/a/b")


@live
def test_non_ascii_profile_round_trip(api):
    name = f"apitx-é-{uuid.uuid4().hex[:8]}"
    try:
        api.profiles.post(json={"name": name, "description": "nav"})
        assert api.profiles[name].get().metadata["name"] == name
        api.profiles[name].patch(json={"config": {"user.x": "1"}})
        assert api.profiles[name].get().metadata["config"] == {"user.x": "1"}
    finally:
        api.profiles[name].delete(validate=False)
    assert api.profiles[name].get(validate=False).status_code == 404


@live
def test_state_put_wait_on_a_real_instance(api, instance):
    api.instances[instance].state.put(json={"action": "start"}).wait(timeout=60)
    assert api.instances[instance].state.get().metadata["status"] == "Running"
    api.instances[instance].state.put(json={"action": "stop", "force": True}).wait(timeout=60)
    assert api.instances[instance].state.get().metadata["status"] == "Stopped"


def test_api_timeout_applies_to_navigation(hostile):
    # pylxd dropped the timeout on attribute access; here it is the API's.
    with apitx.API.factory(hostile.server_address, default_version=None,
                           timeout=apitx.Timeout(connect=2, read=1)) as api:
        with pytest.raises(APITimeoutError):
            api["slow"].get()


@live
def test_one_connection_for_every_segment(api, lxd_socket, socket_connects):
    # pylxd made a session per segment (#360): here every call shares the API's.
    for i in range(20):
        api.instances[f"missing-{i}"].state.get(validate=False)
        api.storage_pools["default"].get()
    assert socket_connects == [lxd_socket]


def test_replay_navigation_without_lxd(cassette):
    context, socket_path = cassette("navigation.yaml")
    with context, apitx.API.factory(socket_path) as api:
        root = api.get("")
        pools = api.storage_pools.get(params={"recursion": 1})
        default = api.storage_pools["default"].get()
        spaced = api.instances["two words"].get(validate=False)
        method_named = api.instances["get"].get(validate=False)
        accented = api.profiles["été"].get(validate=False)
    assert root.metadata["api_version"] == "1.0"
    assert any(p["name"] == "default" for p in pools.metadata)
    assert default.metadata["driver"] == "dir"
    assert spaced.request_path() == "/1.0/instances/two%20words"
    assert spaced.data["error"] == "Instance not found"  # recorded from LXD
    assert method_named.data["error"] == "Instance not found"
    assert accented.request_path() == "/1.0/profiles/%C3%A9t%C3%A9"
    assert accented.status_code == 404
