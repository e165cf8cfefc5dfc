"""The rules of live tests, enforced: a test that uses a live fixture without
the ``live`` mark stops the run at collection (tests/livemarks.py), ``-m "not
live"`` keeps only offline tests, and a missing server fails its tests
instead of dropping them (tests/live.py).

Each test runs pytest on a small test file of its own (pytester) whose
fixtures have the live fixtures' names but reach no server.
"""

from __future__ import annotations

import os
import sys

import pytest

from livemarks import LIVE_FIXTURES

#: Stand-ins with the live fixtures' names, and one built on them, as
#: conftest.py builds ``api`` on ``server``.
CONFTEST = "\n".join(
    ["import pytest"]
    + [f"@pytest.fixture\ndef {name}():\n    return {name!r}\n" for name in sorted(LIVE_FIXTURES)]
    + ["@pytest.fixture\ndef api(server):\n    return server\n"])


def run(pytester: pytest.Pytester, source: str, *args: str) -> pytest.RunResult:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_sample=source)
    return pytester.runpytest_inprocess("-p", "livemarks", "--collect-only", "-q", *args)


def test_an_unmarked_test_using_a_live_fixture_stops_the_run(pytester: pytest.Pytester) -> None:
    fixtures = [*sorted(LIVE_FIXTURES), "api"]
    result = run(pytester, "import pytest\n\ndef test_offline():\n    pass\n" + "".join(
        f"\ndef test_forgot_{name}({name}):\n    pass\n"
        f"\n@pytest.mark.live\ndef test_marked_{name}({name}):\n    pass\n"
        for name in fixtures), "-m", "not live")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = result.stderr.str()
    assert "not marked live" in errors
    named = [line.strip() for line in result.stderr.lines if "::" in line]
    assert named == [f"test_sample.py::test_forgot_{name}" for name in fixtures]


def test_static_marks_pass_and_not_live_keeps_only_offline_tests(
        pytester: pytest.Pytester) -> None:
    result = run(pytester, """
import os
import sys

import pytest

live = pytest.mark.live

@pytest.fixture(params=[pytest.param("lxd", marks=live), "replay"])
def mode(request):
    return request.param

def test_offline():
    pass

@live
def test_decorated(server):
    pass

def test_modes(mode):
    pass

class TestModuleLevel:
    pytestmark = live

    def test_in_marked_class(self, api):
        pass
""", "-m", "not live")
    assert result.ret == pytest.ExitCode.OK
    collected = [line for line in result.outlines if "::" in line]
    assert collected == ["test_sample.py::test_offline", "test_sample.py::test_modes[replay]"]


def test_a_mark_added_at_setup_is_too_late_for_selection(pytester: pytest.Pytester) -> None:
    """Why the marks must be static: what test_cli.py's ``run`` fixture did
    (``request.applymarker`` during setup) runs the live test under
    ``-m "not live"``. This pins pytest's behaviour that the plugin exists for."""
    pytester.makepyfile(test_sample="""
import os
import sys

import pytest

@pytest.fixture(params=["lxd"])
def mode(request):
    request.applymarker(pytest.mark.live)
    return request.param

def test_modes(mode):
    pass
""")
    result = pytester.runpytest_inprocess("-m", "not live", "-q")
    result.assert_outcomes(passed=1)


def test_a_missing_server_fails_its_targets_never_drops_them(pytester: pytest.Pytester,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    """tests/live.py's targets are the same on every machine: with no Incus
    socket the ``[incus]`` tests are still collected, and FAIL naming the
    command that prepares Incus (before, they silently dropped out)."""
    monkeypatch.setenv("APITX_INCUS_SOCKET", str(pytester.path / "no-incus.socket"))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(sys.path))
    pytester.makepyfile(test_sample="""
import os
import sys

import pytest

@pytest.mark.live
def test_reach(target):
    pass
""")
    result = pytester.runpytest_subprocess("-p", "clients", "-p", "live", "-p", "livemarks",
                                           "-k", "incus and sync and not async and not https")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "*ERROR at setup of test_reach[[]incus-sync[]]*",
        f"*no incus socket at {pytester.path}/no-incus.socket: run scripts/lxd-sandbox incus "
        "(as root) first; live tests never skip*"])
