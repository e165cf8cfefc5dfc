"""What starting apitx imports: only what the work at hand uses (issue 19).

``import apitx`` imports none of its heavy dependencies; a request (the
``apitx`` command's ``apitx /1.0``, or ``API.factory().get('')``) imports no
websocket client, certificate library, YAML parser, aiohttp, vcrpy or
``dataclasses``, and none of apitx's modules for waiting, exec, events,
remotes, migrations, tracing or the other subcommands. Each case runs in a
fresh interpreter, which reports its ``sys.modules``. What an import costs
is measured by bench/cli_start.py, never asserted here.

The names stay where they were: every name of ``apitx.__all__`` (and of
``apitx._transports``) is there when looked up, and ``dir()`` lists them.
"""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, List

import pytest

import apitx
from apitx._lazy import LazyPattern

ROOT = Path(__file__).resolve().parent.parent

#: Dependencies a plain request must not import, with what each cost at
#: start (python -X importtime, this machine): websocket-client ~10 ms (exec,
#: events), cryptography ~22 ms (pins, remote add), PyYAML ~14 ms (remotes),
#: aiohttp (the async client), vcrpy (apitx.testing's recorder), and
#: dataclasses ~7 ms (it imports inspect, ast and dis; apitx._value replaced
#: it in the modules a request imports).
HEAVY = ("websocket", "cryptography", "yaml", "aiohttp", "vcr", "dataclasses")

#: apitx's own modules a request does not use: each is imported where its
#: work starts (a wait, exec, events, a remote, a trace, a curl line,
#: navigation, a redirect followed, a subcommand). A module added to a request's path on purpose is removed
#: from here, with the figures of bench/cli_start.py to show it costs nothing.
UNUSED_BY_A_REQUEST = (
    "apitx._operations", "apitx._waiting", "apitx._events", "apitx._exec", "apitx._files",
    "apitx._remotes", "apitx._remote_add", "apitx._migration", "apitx.ensure", "apitx.migrate",
    "apitx._tracing", "apitx._curl", "apitx._resource", "apitx._redirects",
    "apitx._transports._websocket", "apitx._transports._mock", "apitx._transports._relay",
    "apitx.cli._exec", "apitx.cli._events", "apitx.cli._remote", "apitx.cli._wait",
)


def reported(code: str, *args: str) -> Any:
    """What a fresh interpreter running ``code`` reports: the JSON of the last
    line it writes on stderr (its ``sys.modules``, say)."""
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stderr.splitlines()[-1])


REPORT = "print(json.dumps(sorted(sys.modules)), file=sys.stderr)"


def unwanted(modules: List[str], names: tuple) -> List[str]:
    """Which of ``names`` (or their submodules) are in ``modules``."""
    return sorted(name for name in names
                  if any(m == name or m.startswith(name + ".") for m in modules))


def test_import_apitx_imports_nothing_heavy() -> None:
    modules = reported(f"import json, sys, apitx; {REPORT}")
    assert unwanted(modules, HEAVY + UNUSED_BY_A_REQUEST) == []
    # Not even requests: every name but the exceptions is imported on first use.
    assert "requests" not in modules and "apitx._api" not in modules


@pytest.mark.live
def test_the_command_sends_a_request_importing_only_what_it_uses(lxd_socket: str) -> None:
    modules = reported(
        "import json, sys\n"
        "from apitx.cli import main\n"
        f"code = main(sys.argv[1:]); {REPORT}; sys.exit(code)", "-e", lxd_socket, "/1.0")
    assert "apitx.cli._request" in modules  # it did run the request
    assert unwanted(modules, HEAVY + UNUSED_BY_A_REQUEST) == []


@pytest.mark.live
def test_a_library_request_imports_only_what_it_uses(lxd_socket: str) -> None:
    modules = reported(
        "import json, sys\n"
        "from apitx import API\n"
        "with API.factory(sys.argv[1]) as api:\n"
        "    assert api.get('').metadata['api_version'] == '1.0'\n"
        f"{REPORT}", lxd_socket)
    assert unwanted(modules, HEAVY + UNUSED_BY_A_REQUEST) == []


def test_moving_workloads_imports_websockets_and_yaml_only_where_used() -> None:
    # An export, an import, a pull or a push opens no websocket of its own:
    # relay mode imports them when it starts; YAML is read from an imported
    # backup alone (bench/migrate.py's floor).
    modules = reported(f"import json, sys, apitx.migrate, apitx.cli._transfer; {REPORT}")
    assert "apitx._migration" in modules and "apitx._backups" in modules
    assert unwanted(modules, ("websocket", "yaml", "apitx._transports._websocket",
                              "apitx._transports._relay")) == []


def test_every_public_name_is_there_when_looked_up() -> None:
    found = json.loads(subprocess.run(
        [sys.executable, "-c", "import json, apitx; print(json.dumps("
         "[[n for n in apitx.__all__ if getattr(apitx, n, None) is None], "
         "sorted(set(apitx.__all__) - set(dir(apitx)))]))"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True).stdout)
    assert found == [[], []]
    namespace: dict = {}
    exec("from apitx import *", namespace)
    assert set(apitx.__all__) <= set(namespace)
    assert apitx.ensure.__name__ == "apitx.ensure" and apitx.migrate.__name__ == "apitx.migrate"
    assert apitx.AsyncAPI.__name__ == "AsyncAPI"  # the async names: lazy as before


@pytest.mark.parametrize("package", ["apitx", "apitx._transports"])
def test_a_name_a_package_does_not_have_is_an_attribute_error(package: str) -> None:
    module = importlib.import_module(package)
    with pytest.raises(AttributeError, match=f"module '{package}' has no attribute 'Nope'"):
        getattr(module, "Nope")
    with pytest.raises(ImportError):
        exec(f"from {package} import Nope", {})


def test_the_transports_names_are_all_there() -> None:
    from apitx import _transports

    assert [name for name in _transports.__all__ if getattr(_transports, name, None) is None] == []
    assert set(_transports.__all__) <= set(dir(_transports))


def test_a_lazy_pattern_is_compiled_on_first_use_and_matches_as_re_does() -> None:
    pattern = LazyPattern(r"k(e)y", re.IGNORECASE)
    assert pattern._compiled is None
    assert pattern.search("a KEY").group(1) == "E"  # type: ignore[union-attr]
    assert pattern.compiled is pattern.compiled
    assert pattern.match("key") and not pattern.match("a key") and pattern.match("a key", 2)
    assert pattern.fullmatch("Key") and not pattern.fullmatch("keys")
    assert [m.start() for m in pattern.finditer("key KEY")] == [0, 4]
    assert pattern.sub("*", "key, KEY") == "*, *"


#: The regular expressions compiled when a request's modules are imported:
#: only the ones every request uses at once (the method and header checks).
#: Any other is a LazyPattern, compiled when first used.
COMPILED_AT_IMPORT = {"apitx._prepare": 2, "apitx.cli._input": 1}


def test_a_requests_modules_compile_only_what_every_request_uses() -> None:
    found = reported(
        "import collections, json, re, sys\n"
        "import requests  # its own patterns are not apitx's\n"
        "compiled = collections.Counter()\n"
        "original = re.compile\n"
        "def counting(*args, **kwargs):\n"
        "    caller = sys._getframe(1).f_globals.get('__name__', '')\n"
        "    if caller.startswith('apitx'):\n"
        "        compiled[caller] += 1\n"
        "    return original(*args, **kwargs)\n"
        "re.compile = counting\n"
        "import apitx.cli._request, apitx._api\n"
        "print(json.dumps(compiled), file=sys.stderr)")
    assert found == COMPILED_AT_IMPORT
