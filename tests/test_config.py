"""apitx._config: the DEBUG switch rules and the Timeout value object."""

import pytest

from apitx import Timeout
from apitx._config import env_flag


@pytest.mark.parametrize("word", ["1", "true", "YES", " on ", "2", "verbose"])
def test_env_flag_on(monkeypatch, word):
    monkeypatch.setenv("APITX_T", word)
    assert env_flag("APITX_T") is True


@pytest.mark.parametrize("word", ["", "0", "false", "No", " OFF "])
def test_env_flag_off(monkeypatch, word):
    monkeypatch.setenv("APITX_T", word)
    assert env_flag("APITX_T") is False


def test_env_flag_unset_is_off(monkeypatch):
    monkeypatch.delenv("APITX_T", raising=False)
    assert env_flag("APITX_T") is False


def test_timeout_defaults_are_finite():
    assert Timeout() == Timeout(connect=5.0, read=60.0)


@pytest.mark.parametrize("given, expected", [
    (3, Timeout(3, 3)),
    ((1, 9), Timeout(1, 9)),
    (None, Timeout(None, None)),
    (Timeout(2, 4), Timeout(2, 4)),
])
def test_timeout_coerce(given, expected):
    assert Timeout.coerce(given) == expected
    assert Timeout.coerce(given).as_requests() == (expected.connect, expected.read)


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "5", True])
def test_timeout_refuses_nonsense_naming_it(bad):
    with pytest.raises(ValueError, match=r"Timeout\(connect=.*positive number"):
        Timeout(connect=bad)


def test_timeout_coerce_refuses_other_types():
    with pytest.raises(TypeError, match="timeout=\\[1, 2\\]"):
        Timeout.coerce([1, 2])


def test_with_read_keeps_connect():
    assert Timeout(2, 4).with_read(40) == Timeout(2, 40)
