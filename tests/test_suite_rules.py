"""The suite's own rules, checked on its source: no test asserts how long something took.

Timings belong in bench/ (bench/deadlines.py measures every bound the tests
used to assert): on 2 shared cores a wall-clock bound fails for a neighbour's
load, not for apitx, and a test that fails for no fault of ours teaches
everyone to re-run red. Issue 16 found ``assert time.perf_counter() -
closed_at < 0.1`` in tests/test_events.py; this test finds any like it.

What counts as a timing assertion: an ``assert`` comparing a clock's
difference (``time.monotonic() - started``, or a name a test bound to one,
such as ``took = time.monotonic() - started``). A hang guard compares the
clock with a deadline (``time.monotonic() < deadline``), which measures
nothing and stays allowed; so does :func:`hang.returns_within`.

Example of what fails::

    took = time.monotonic() - started
    assert took < 2
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterator, List, Set

TESTS = Path(__file__).parent
CLOCKS = {"monotonic", "perf_counter", "time", "monotonic_ns", "perf_counter_ns", "time_ns"}


def _is_clock_call(node: ast.AST) -> bool:
    """``time.monotonic()`` and the like (also imported bare: ``monotonic()``)."""
    if not isinstance(node, ast.Call):
        return False
    called = node.func
    name = called.attr if isinstance(called, ast.Attribute) else getattr(called, "id", "")
    return name in CLOCKS


def _is_clock_difference(node: ast.AST, durations: Set[str]) -> bool:
    """A clock read minus something, or a name bound to one."""
    if isinstance(node, ast.Name):
        return node.id in durations
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub):
        return _is_clock_call(node.left) or _is_clock_difference(node.left, durations)
    if isinstance(node, ast.BinOp):  # (clock - start) / runs, and so on
        return _is_clock_difference(node.left, durations)
    return False


def _durations(function: ast.AST) -> Set[str]:
    """Names a function binds to a clock's difference."""
    names: Set[str] = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Assign) and _is_clock_difference(node.value, names):
            names.update(target.id for target in node.targets if isinstance(target, ast.Name))
    return names


def timing_assertions(source: str, filename: str) -> Iterator[str]:
    """``file:line: the assert`` for each assert comparing a clock's difference."""
    tree = ast.parse(source, filename)
    for function in ast.walk(tree):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        durations = _durations(function)
        for node in ast.walk(function):
            if not isinstance(node, ast.Assert):
                continue
            compares = [each for each in ast.walk(node.test) if isinstance(each, ast.Compare)]
            if any(_is_clock_difference(operand, durations)
                   for compare in compares for operand in [compare.left, *compare.comparators]):
                yield f"{filename}:{node.lineno}: {ast.unparse(node)}"


def test_the_finder_tells_a_timing_assertion_from_a_hang_guard():
    timed = ("def test_a():\n    started = time.monotonic()\n"
             "    assert time.perf_counter() - started < 0.1\n"
             "def test_b():\n    took = time.monotonic() - started\n    assert took < 2\n"
             "def test_c():\n    assert (time.perf_counter() - started) / 5 < 0.5\n")
    guarded = ("def test_d():\n    deadline = time.monotonic() + 10\n"
               "    assert time.monotonic() < deadline, 'hung'\n"
               "def test_e():\n    assert records[0]['elapsed_ms'] > 0\n")
    assert [line.split(":")[1] for line in timing_assertions(timed, "t.py")] == ["3", "6", "8"]
    assert list(timing_assertions(guarded, "t.py")) == []


def test_no_test_asserts_how_long_something_took():
    found: List[str] = []
    for path in sorted(TESTS.glob("*.py")):
        found.extend(timing_assertions(path.read_text(), path.name))
    assert not found, ("timings belong in bench/, not in assertions:\n" + "\n".join(found))
