"""A hang guard: a call that must return, run so that a test fails instead of hanging.

Tests assert behaviour, never how long something took (timings belong in
bench/). But some behaviour, broken, hangs: a timeout that is not honoured
waits forever on a silent server, an exec that is not killed sleeps for an
hour. :func:`returns_within` runs such a call in a thread and fails the test,
loudly and by name, when it has not returned after a generous time: a guard
against hanging, not a measure of speed.

Example::

    returns_within(60, lambda: next(stream), "next() on a stream with timeout=0.3")
"""

from __future__ import annotations

import threading
from typing import Callable, List, TypeVar

import pytest

T = TypeVar("T")


def returns_within(seconds: float, call: Callable[[], T], what: str) -> T:
    """What ``call()`` returned, or raise what it raised; a test failure naming
    ``what`` if it is still running after ``seconds`` (then it is left running,
    in a daemon thread: it cannot be stopped from outside)."""
    results: List[T] = []
    errors: List[BaseException] = []

    def run() -> None:
        try:
            results.append(call())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True, name=f"hang guard: {what}")
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"{what} had not returned after {seconds:g} s: it hangs", pytrace=False)
    if errors:
        raise errors[0]
    return results[0]
