"""The ``live`` mark, checked at collection: a test that needs a server says so.

``pytest -m "not live"`` must run only tests that need no server, so the
mark has to be there when pytest selects, which is at collection: on the
test (``@pytest.mark.live``), its module (``pytestmark``), or the parameter
of a fixture that reaches a server (``pytest.param("lxd", marks=live)``).
A mark added while a fixture sets up (``request.applymarker``) comes too
late: the test was already selected, and it runs under ``-m "not live"``.

Every test that reaches a server does so through one of :data:`LIVE_FIXTURES`
(directly or through a fixture built on one), and pytest knows each test's
fixtures at collection. So this plugin (``pytest_plugins`` in conftest.py)
refuses a run in which a test uses one of them without the mark, naming the
tests: a forgotten mark breaks the run at once instead of quietly running a
live test in an offline one. (A fixture requested with
``request.getfixturevalue`` is invisible here: such a fixture's live
parameters carry the mark themselves, as ``run`` in test_cli.py does.)

Example::

    @pytest.mark.live
    def test_root(api):                  # api -> lxd_socket -> server: live
        assert api.get('').metadata['api_version'] == '1.0'
"""

from __future__ import annotations

from typing import List

import pytest

#: The fixtures through which tests reach a real server: ``server`` (each
#: sandbox daemon; conftest.py, test_servers_facts.py), ``lxd_only_socket``
#: (LXD alone), ``live`` (tests/live.py's running instances), ``members``
#: (the cluster, tests/cluster.py). ``lxd_socket``, ``api``, ``instance``
#: and ``target`` are built on them, so any test using those uses these.
LIVE_FIXTURES = frozenset({"server", "lxd_only_socket", "live", "members"})


def unmarked_live_tests(items: List[pytest.Item]) -> List[str]:
    """The ids of ``items`` that use a live fixture but are not marked ``live``."""
    return [item.nodeid for item in items
            if LIVE_FIXTURES.intersection(getattr(item, "fixturenames", ()))
            and item.get_closest_marker("live") is None]


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects: every test is checked
def pytest_collection_modifyitems(items: List[pytest.Item]) -> None:
    unmarked = unmarked_live_tests(items)
    if unmarked:
        raise pytest.UsageError(
            "these tests use a live fixture (" + ", ".join(sorted(LIVE_FIXTURES)) + ") but are "
            "not marked live, so `-m \"not live\"` would run them: mark them "
            "@pytest.mark.live (or pytestmark, or pytest.param(..., marks=live)):\n  "
            + "\n  ".join(unmarked))
