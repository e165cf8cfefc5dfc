"""apitx._config: the DEBUG switch rules and the Timeout value object; apitx._value."""

import copy
import pickle

import pytest

import apitx
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


# -- TraceSettings: the environment, read once --------------------------------------

from apitx import RenderOptions, SettingsError, TraceSettings  # noqa: E402


@pytest.mark.parametrize("environ, expected", [
    ({}, TraceSettings()),
    ({"DEBUG": "1"}, TraceSettings(enabled=True)),
    ({"DEBUG": "0", "APITX_DEBUG": "json"}, TraceSettings(format="json")),
    ({"DEBUG": "yes", "APITX_DEBUG": " CURL ", "APITX_DEBUG_FILE": " t.log "},
     TraceSettings(enabled=True, format="curl", file="t.log")),
    ({"APITX_DEBUG_UNSAFE": "1", "APITX_DEBUG_MAX_BODY": "10"},
     TraceSettings(render=RenderOptions(unsafe=True, max_body=10))),
])
def test_trace_settings_from_the_environment(environ, expected):
    assert TraceSettings.from_env(environ) == expected


@pytest.mark.parametrize("environ, named", [
    ({"APITX_DEBUG": "xml"}, "APITX_DEBUG='xml' is not a trace format: use text, json, curl"),
    ({"APITX_DEBUG_MAX_BODY": "lots"}, "APITX_DEBUG_MAX_BODY='lots': give a positive number"),
    ({"APITX_DEBUG_MAX_BODY": "0"}, "APITX_DEBUG_MAX_BODY='0'"),
])
def test_bad_trace_variables_are_refused_naming_them(environ, named):
    with pytest.raises(SettingsError, match=named.replace("(", r"\(")):
        TraceSettings.from_env(environ)


@pytest.mark.parametrize("given, enabled, format", [
    (True, True, "text"), (False, False, "text"), ("json", True, "json"),
    (TraceSettings(enabled=True, format="curl"), True, "curl"),
])
def test_trace_argument_forms(monkeypatch, given, enabled, format):
    monkeypatch.setenv("DEBUG", "1")  # trace=False wins over the environment
    settings = TraceSettings.coerce(given)
    assert (settings.enabled, settings.format) == (enabled, format)


@pytest.mark.parametrize("bad", ["xml", 3, RenderOptions()])
def test_bad_trace_arguments_are_refused(bad):
    with pytest.raises(SettingsError, match="trace|format"):
        TraceSettings.coerce(bad)


@pytest.mark.parametrize("bad", [0, -1, True, 1.5])
def test_render_options_refuse_a_bad_body_limit(bad):
    with pytest.raises(SettingsError, match="max_body"):
        RenderOptions(max_body=bad)


# -- values (apitx._value: what frozen dataclasses gave, without their import cost) ----

VALUES = [
    lambda: apitx.Timeout(2, 120), lambda: apitx.Limits(max_connections=8),
    lambda: apitx.RenderOptions(unsafe=True), lambda: apitx.TraceSettings(True, "json"),
    lambda: apitx.Endpoint.parse("/var/lib/lxd/unix.socket"),
    lambda: apitx.Server("lxd", "5.0.2", "1.0", frozenset({"etag"}), "trusted", None),
    lambda: apitx.Pin.from_fingerprints("sha256:" + "0" * 64),
]


@pytest.mark.parametrize("make", VALUES)
def test_settings_and_descriptions_are_immutable_values(make):
    value = make()
    assert value == make() and hash(value) == hash(make()) and value is not make()
    assert value != object() and copy.copy(value) == value
    assert pickle.loads(pickle.dumps(value)) == value
    name, *_ = vars(value)
    with pytest.raises(AttributeError, match=f"cannot assign to field '{name}'"):
        setattr(value, name, None)
    with pytest.raises(AttributeError, match=f"cannot delete field '{name}'"):
        delattr(value, name)
    assert value == make()  # unchanged


def test_a_value_shows_its_fields_in_order():
    assert repr(apitx.Timeout(2, 120)) == "Timeout(connect=2, read=120, total=300.0)"
    assert repr(apitx.Endpoint("http+unix://lxd", "/s")) == \
        "Endpoint(base_url='http+unix://lxd', socket_path='/s', project=None)"
    assert apitx.Timeout(2, 120) != apitx.Timeout(2, 121)
