"""tests/livemarks.py: a test that uses a live fixture without the ``live`` mark
stops the run at collection, and ``-m "not live"`` keeps only offline tests.

Each test runs pytest on a small test file of its own (pytester) whose
fixtures have the live fixtures' names but reach no server.
"""

from __future__ import annotations

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
