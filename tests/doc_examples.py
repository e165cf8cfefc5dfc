"""The documentation's examples, run as tests: a pytest plugin.

Every code example on the site's pages (``docs/**/*.md``) and in the README
is run against the sandbox LXD and must print what the page shows, so the
guide cannot drift from the library. A page holds two kinds of runnable
block:

- ``pycon``: Python at ``>>>`` prompts, checked as doctests (``...`` in the
  shown output matches anything, whitespace runs compare equal);
- ``console``: shell commands after ``$ ``, run with bash; the output shown
  is stdout and stderr as they came, then ``[exit N]`` when N is not 0.

A page's blocks run in order in one namespace, as one test per page (marked
``live``: it fails, never skips, without the server). Other fences are text
(``text`` for traces and recorded sessions, ``toml`` for configuration); a
``python``, ``sh`` or ``shell`` fence is refused, since it would be code
that nothing runs.

What the examples may use without defining it (:func:`namespace`), in
Python and as shell variables alike:

- ``c1``: the name of a running busybox instance, made once per test run
  with a unique name and deleted at its end, whatever happened;
- ``c2``: a unique name no instance has, for a page to create one: deleted
  after the page if it exists (on the second LXD too);
- ``lxd2``: the Unix socket of the second LXD of ``scripts/lxd-pair``
  (``tests/pair.py``), for the examples that move things between servers.

The runner takes any :class:`doctest.DocTest` (:class:`ExampleItem`), so
the docstrings' own ``>>>`` examples can join by collecting
``DocTestFinder().find(module)`` into the same items, with the same
namespace. Loaded by ``-p doc_examples`` (pyproject.toml's ``addopts``)::

    python3 -m pytest docs                  # every page
    python3 -m pytest docs/guide/exec.md    # one page
"""

from __future__ import annotations

import doctest
import importlib
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import pytest

import apitx
from pair import SOCKETS
from sandbox import SERVER_BY_NAME, instance_config, live_server, remove_instance

ROOT = Path(__file__).resolve().parent.parent
#: The pages' directory: Markdown files below it are pages (not under ``_build`` & co).
DOCS = ROOT / "docs"
#: The README's tour runs too: it is the PyPI page, the first example people copy.
README = ROOT / "README.md"
#: ```name at the start of a line opens a fence; ``` alone closes it.
FENCE = re.compile(r"^```\s*(\S*)")
RUN = {"pycon", "console"}
REFUSED = {"python", "py", "sh", "shell", "bash"}
OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
#: Room for exec, waits and instance creation in one example.
SHELL_TIMEOUT = 300


#: The package whose docstrings' ``>>>`` examples run too (the reference shows them).
PACKAGE = ROOT / "apitx"


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> Optional[pytest.File]:
    if file_path.suffix == ".md" and _is_page(file_path):
        return Page.from_parent(parent, path=file_path)
    if file_path.suffix == ".py" and _is_package_module(file_path):
        return Docstrings.from_parent(parent, path=file_path)
    return None


def _is_package_module(path: Path) -> bool:
    try:
        path.resolve().relative_to(PACKAGE)
    except ValueError:
        return False
    return True


def module_name(path: Path) -> str:
    """``apitx/_aio/_api.py`` -> ``apitx._aio._api`` (``__init__`` is the package)."""
    parts = list(path.resolve().relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


class Docstrings(pytest.File):
    """A module of apitx: one item per docstring holding ``>>>`` examples, run
    in the module's globals plus :func:`namespace` (a reader copying one
    imports what it uses; the examples may lean on the module's names)."""

    def collect(self) -> Iterator[pytest.Item]:
        module = importlib.import_module(module_name(self.path))
        finder = doctest.DocTestFinder(exclude_empty=True)
        for test in sorted(finder.find(module), key=lambda test: test.name):
            if test.examples and _defined_here(test, module):
                item = ExampleItem.from_parent(self, name=test.name, test=test)
                item.add_marker(pytest.mark.live)
                yield item


def _defined_here(test: doctest.DocTest, module: Any) -> bool:
    """Whether ``test`` is from ``module``'s own file, not a re-exported name's."""
    return test.filename is None or Path(test.filename).resolve() == Path(module.__file__).resolve()


def _is_page(path: Path) -> bool:
    if path.resolve() == README:
        return True
    try:
        parts = path.resolve().relative_to(DOCS).parts
    except ValueError:
        return False
    return not any(part.startswith(("_", ".")) for part in parts)


class Page(pytest.File):
    """A Markdown page: one item running all its examples, if it has any."""

    def collect(self) -> Iterator[pytest.Item]:
        examples = parse_page(self.path.read_text(encoding="utf-8"))
        if examples:
            test = doctest.DocTest(examples, {}, self.path.name, str(self.path), 0, None)
            item = ExampleItem.from_parent(self, name=self.path.name, test=test)
            item.add_marker(pytest.mark.live)
            yield item


class FenceError(Exception):
    """A page whose fences cannot be run as shown."""


def parse_page(text: str) -> List[doctest.Example]:
    """The runnable examples of a Markdown page, with their line numbers.

    >>> [e.source for e in parse_page('```pycon\\n>>> 1 + 1\\n2\\n```\\n')]
    ['1 + 1\\n']
    """
    examples: List[doctest.Example] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        opened = FENCE.match(lines[index])
        if not opened:
            index += 1
            continue
        kind, start = opened.group(1), index + 1
        end = start
        while end < len(lines) and lines[end].rstrip() != "```":
            end += 1
        if end == len(lines):
            raise FenceError(f"line {index + 1}: a ``` fence is never closed")
        if kind in REFUSED:
            raise FenceError(f"line {index + 1}: a ```{kind} block is code nothing runs: "
                             "write it as ```pycon (>>> prompts) or ```console ($ prompts)")
        block = lines[start:end]
        if kind == "pycon":
            parsed = doctest.DocTestParser().parse("\n".join(block) + "\n")
            for example in parsed:
                if isinstance(example, doctest.Example):
                    example.lineno += start
                    examples.append(example)
        elif kind == "console":
            examples.extend(console_examples(block, start))
        index = end + 1
    return examples


def console_examples(block: List[str], first: int) -> List[doctest.Example]:
    """``$ command`` lines (a trailing ``\\`` continues one) and the output
    after each, as doctest examples that call :func:`shell`."""
    examples: List[doctest.Example] = []
    index = 0
    while index < len(block):
        if not block[index].startswith("$ "):
            raise FenceError(f"line {first + index + 1}: output before any $ command")
        lineno = first + index
        command = block[index][2:]
        while command.endswith("\\") and index + 1 < len(block):
            index += 1
            command = command[:-1] + "\n" + block[index]
        index += 1
        output = []
        while index < len(block) and not block[index].startswith("$ "):
            output.append(block[index])
            index += 1
        want = "".join(line + "\n" for line in output)
        examples.append(doctest.Example(f"shell({command!r})\n", want, lineno=lineno))
    return examples


def shell_for(names: Dict[str, str]) -> Callable[[str], None]:
    """``shell(command)`` for a page: runs a console example with bash, the
    page's names as variables, and prints what a terminal would show."""

    def shell(command: str) -> None:
        # ``apitx`` is the command of the Python running the tests (its venv's
        # bin first), so a checkout's examples run its own code.
        path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
        done = subprocess.run(["bash", "-c", command], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, env={**os.environ, **names, "PATH": path},
                              timeout=SHELL_TIMEOUT)
        print(done.stdout.decode(errors="replace"), end="")
        if done.returncode:
            print(f"[exit {done.returncode}]")

    return shell


class Sandbox:
    """The running instance every page shares, made on first use."""

    def __init__(self, config: pytest.Config) -> None:
        self._config = config
        self._api: Optional[apitx.API] = None
        self._api2: Optional[apitx.API] = None
        self.running: Optional[str] = None

    def api(self) -> apitx.API:
        if self._api is None:
            self._api = apitx.API.factory(live_server(SERVER_BY_NAME["lxd"]).socket)
            self._config.add_cleanup(self._api.close)
        return self._api

    def remove(self, name: str) -> None:
        """Delete instance ``name`` wherever an example may have made it: the
        sandbox's LXD, and the pair's second LXD when it is up."""
        remove_instance(self.api(), name)
        if os.path.exists(SOCKETS["lxd2"]):
            if self._api2 is None:
                self._api2 = apitx.API.factory(SOCKETS["lxd2"])
                self._config.add_cleanup(self._api2.close)
            remove_instance(self._api2, name)

    def running_instance(self) -> str:
        if self.running is None:
            api, name = self.api(), unique_name()
            # Cleanup first: an instance half made by a failed create goes too.
            self._config.add_cleanup(lambda: remove_instance(api, name))
            api.post("instances", json=instance_config(name)).wait(timeout=120)
            api.put(f"instances/{name}/state", json={"action": "start"}).wait(timeout=60)
            self.running = name
        return self.running


def unique_name() -> str:
    return f"apitx-{uuid.uuid4().hex[:10]}"


def namespace(sandbox: Sandbox) -> Dict[str, object]:
    """The names every example of a page may use without defining them."""
    names = {"c1": sandbox.running_instance(), "c2": unique_name(), "lxd2": SOCKETS["lxd2"]}
    return {"__name__": "__main__", **names, "shell": shell_for(names)}


_SANDBOX = pytest.StashKey[Sandbox]()


class ExampleFailure(Exception):
    """Raised with doctest's report of the examples that did not do as shown."""


class ExampleItem(pytest.Item):
    """One :class:`doctest.DocTest` run against the sandbox, in :func:`namespace`."""

    def __init__(self, *, test: doctest.DocTest, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.test = test

    def runtest(self) -> None:
        stash = self.config.stash
        if _SANDBOX not in stash:
            stash[_SANDBOX] = Sandbox(self.config)
        sandbox = stash[_SANDBOX]
        self.test.globs = {**self.test.globs, **namespace(sandbox)}
        made = str(self.test.globs["c2"])
        report: List[str] = []
        runner = doctest.DocTestRunner(optionflags=OPTIONS)
        try:
            runner.run(self.test, out=report.append, clear_globs=False)
        finally:
            sandbox.remove(made)
            for value in self.test.globs.values():
                if isinstance(value, apitx.API) and value is not sandbox.api():
                    value.close()
            self.test.globs.clear()
        if runner.failures:
            raise ExampleFailure("".join(report))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Optional[str] = None) -> str:
        if isinstance(excinfo.value, ExampleFailure):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo, style=style))  # type: ignore[arg-type]

    def reportinfo(self) -> Tuple[Path, None, str]:
        return self.path, None, f"examples of {self.name}"
