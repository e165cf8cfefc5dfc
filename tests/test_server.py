"""apitx._server and api.server: which server an API talks to, read once."""

from __future__ import annotations

import logging
import re
import threading

import pytest

import apitx
from apitx import MissingExtension, Server
from apitx.testing import Answer

live = pytest.mark.live

LXD_ROOT = {"api_version": "1.0", "auth": "trusted", "api_extensions": ["etag", "devlxd_events"],
            "environment": {"server": "lxd", "server_version": "5.0.2", "project": "default"}}
INCUS_UNTRUSTED = {"api_version": "1.0", "auth": "untrusted", "config": {},
                   "api_extensions": ["etag", "dev_incus_events"]}


def test_from_metadata_reads_what_get_1_0_says():
    server = Server.from_metadata(LXD_ROOT)
    assert server == Server(name="lxd", version="5.0.2", api_version="1.0",
                            api_extensions=frozenset({"etag", "devlxd_events"}),
                            auth="trusted", project="default")
    assert str(server) == "lxd 5.0.2 (API 1.0)"
    assert server.header_prefix == "X-LXD-"


def test_an_untrusted_client_sees_no_environment_so_the_family_comes_from_extensions():
    server = Server.from_metadata(INCUS_UNTRUSTED)
    assert (server.name, server.version, server.auth, server.project) == (
        "incus", None, "untrusted", None)
    assert server.header_prefix == "X-Incus-"
    assert str(server) == "incus (API 1.0)"


@pytest.mark.parametrize("metadata", [None, "<html>", [], {"environment": "odd"}])
def test_anything_else_gives_an_unnamed_server_not_an_exception(metadata):
    server = Server.from_metadata(metadata)
    assert server.name == "" and server.api_extensions == frozenset()
    assert server.header_prefix == "X-LXD-"  # what both servers read
    assert str(server) == "an unnamed LXD-style server (API ?)"


def test_the_value_is_frozen():
    server = Server.from_metadata(LXD_ROOT)
    with pytest.raises(AttributeError):
        server.name = "incus"  # type: ignore[misc]
    assert server.missing(["etag", "nope", "devlxd_events", "other"]) == ("nope", "other")


def test_fetched_once_whatever_the_threads(canned, canned_api):
    canned.answers["/1.0"] = Answer.sync({"api_version": "1.0"})
    seen = []
    threads = [threading.Thread(target=lambda: seen.append(canned_api.server))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 8 and all(s is seen[0] for s in seen)
    assert canned.targets() == ["/1.0"]


def test_require_names_the_server_and_what_is_missing(canned, canned_api):
    canned.answers["/1.0"] = Answer.sync({"api_version": "1.0"})
    with pytest.raises(MissingExtension) as info:
        canned_api.require("instances", "file_delete")
    assert str(info.value) == (
        "an unnamed LXD-style server (API 1.0) at https://lxd.test:8443 lacks API "
        "extensions instances, file_delete: this needs a newer server, or a way that does "
        "without (api.has_extension() tells which)")
    assert info.value.missing == ("instances", "file_delete")
    assert not canned_api.has_extension("instances")


@live
def test_each_server_says_what_it_is(api, server):
    about = api.server
    assert about.name == server.name
    assert re.fullmatch(r"\d+\.\d+(\.\d+)?", about.version or "")
    assert (about.api_version, about.auth, about.project) == ("1.0", "trusted", "default")
    assert isinstance(about.api_extensions, frozenset)
    assert "container_exec_recording" in about.api_extensions
    assert api.require("container_exec_recording", "file_delete") is about


@live
def test_extension_names_differ_between_the_families(api, server):
    """A server's own behaviour: Incus renamed LXD's devlxd_* extensions to
    dev_incus_*, so a feature is tested by the name its family uses."""
    own, other = (("devlxd_events", "dev_incus_events") if server.name == "lxd" else
                  ("dev_incus_events", "devlxd_events"))
    assert api.has_extension(own) and not api.has_extension(other)
    with pytest.raises(MissingExtension) as info:
        api.require(own, other)
    assert info.value.missing == (other,)
    assert str(info.value).startswith(
        f"{api.server} at unix:{server.socket} lacks API extension {other}: this needs a "
        f"newer {server.name}")


@live
def test_an_untrusted_https_client_still_learns_the_family(server):
    with apitx.API.factory(server.https, verify=server.server_cert) as api:
        assert (api.server.name, api.server.auth, api.server.version) == (
            server.name, "untrusted", None)


@live
def test_the_trace_says_which_server_first(lxd_socket, server, caplog):
    caplog.set_level(logging.DEBUG, logger="apitx")
    with apitx.API.factory(lxd_socket, debug=True) as api:
        api.server
        api.server
    lines = [record.getMessage() for record in caplog.records]
    assert lines[0].startswith("#") and " GET /1.0 " in lines[0]
    assert lines[1:] == [f"apitx: talking to {api.server} at unix:{lxd_socket}"]
    assert re.fullmatch(rf"apitx: talking to {server.name} [\d.]+ \(API 1\.0\) at unix:\S+",
                        lines[1])


@pytest.mark.parametrize("format, line", [
    ("json", '{"note": "apitx: talking to an unnamed LXD-style server (API 1.0) at unix:%s"}'),
    ("curl", "# apitx: talking to an unnamed LXD-style server (API 1.0) at unix:%s"),
])
def test_the_server_line_keeps_each_trace_format_parseable(hostile, caplog, format, line):
    caplog.set_level(logging.DEBUG, logger="apitx")
    with apitx.API.factory(hostile.server_address, trace=format) as api:
        api.server
    assert caplog.records[-1].getMessage() == line % hostile.server_address
