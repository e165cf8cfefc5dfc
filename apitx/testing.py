"""Testing code that uses apitx: answers from a function, or recorded sessions.

Two tools, for two kinds of test:

- :class:`MockTransport`: a handler (a :class:`MockRequest` in, an
  :class:`Answer` out) stands in for the server, under the real sender,
  validation, waiting and tracing. For unit tests of a program's own logic:
  no server, no recording, any answer (failures included) on demand:

  >>> from apitx import API
  >>> api = API.factory(transport=MockTransport(lambda request: Answer.error(404, 'Instance not found')))
  >>> api.get('instances/c1')
  Traceback (most recent call last):
    ...
  apitx.APINotFoundException: GET https://lxd.test:8443/1.0/instances/c1: Instance not found

- :func:`recorder`: record a real session once with vcrpy, replay it with no
  server (``pip install apitx[testing]``). What follows is about it.

Record and replay LXD sessions with vcrpy, over a Unix socket.

vcrpy swaps ``HTTPConnectionPool.ConnectionCls`` for its stub and throws
away pooled connections that are not that stub: a Unix-socket pool that
builds its own connection in ``_new_conn`` makes it loop forever, recording
and replaying alike.

apitx's pool only sets ``ConnectionCls`` to its Unix socket connection. This
module gives vcrpy one more patch: while a cassette is open, our pool's
``ConnectionCls`` is a class that mixes vcrpy's connection stub with our Unix
socket connection. Recording then really talks to the socket; replaying
answers from the cassette and opens no socket at all.

It also normalises what changes at every recording (operation UUIDs, LXD's
server certificate, timestamps, ``Date`` headers) so that re-recording gives small
diffs, while replay still matches: the same UUID maps to the same
placeholder in requests and responses alike.

Example: a session recorded once, then replayed where no LXD is (the
socket path need not exist):

>>> import tempfile
>>> from apitx import API
>>> from apitx.testing import recorder
>>> cassettes = tempfile.TemporaryDirectory()
>>> for socket in ('/var/lib/lxd/unix.socket', '/nonexistent/unix.socket'):
...     with recorder(cassettes.name).use_cassette('state.yaml'):
...         print(API.factory(socket).get('instances/c1/state', validate=False))
<APIResult GET unix:/var/lib/lxd/unix.socket /1.0/instances/c1/state HTTP/404>
<APIResult GET unix:/nonexistent/unix.socket /1.0/instances/c1/state HTTP/404>
>>> cassettes.cleanup()

Replay needs no LXD: the socket path may not even exist. vcrpy's stubs are
internals, so setup.py pins the vcrpy versions this was proven with.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Dict, Type

from ._exceptions import SettingsError
from ._transports import Answer, MockRequest, MockTransport, operation
from ._transports._unix import UnixSocketConnection, UnixSocketConnectionPool

__all__ = ["Answer", "MockRequest", "MockTransport", "Normaliser", "operation", "recorder",
           "vcr_connection_class"]


@functools.lru_cache(maxsize=None)
def vcr_connection_class() -> Type[UnixSocketConnection]:
    """vcrpy's recording stub in front of a real Unix socket connection (made on
    first use: vcrpy is imported only by those who record)."""
    from vcr.stubs import VCRHTTPConnection  # type: ignore[import-untyped]

    return type("VCRUnixSocketConnection", (VCRHTTPConnection, UnixSocketConnection),
                {"_baseclass": UnixSocketConnection})


_UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_PLACEHOLDER_PREFIX = b"00000000-0000-4000-8000-"
_CERTIFICATE = re.compile(
    rb'"certificate":\s*"-----BEGIN CERTIFICATE-----[^"]*-----END CERTIFICATE-----\\n"')
_FINGERPRINT = re.compile(rb'"certificate_fingerprint":\s*"[0-9a-f]{64}"')
_TIMESTAMP = re.compile(rb'"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d))"')


class Normaliser:
    """Replaces what differs between recordings with stable placeholders.

    One instance serves one cassette: it remembers which real UUID became
    which placeholder, so the operation URL a response announced and the
    ``/wait`` request that follows it still match.
    """

    def __init__(self) -> None:
        self._uuids: Dict[bytes, bytes] = {}

    def _uuid(self, match: re.Match[bytes]) -> bytes:
        real: bytes = match.group(0)
        if real.startswith(_PLACEHOLDER_PREFIX):
            return real  # already ours: replayed responses carry placeholders
        if real not in self._uuids:
            self._uuids[real] = _PLACEHOLDER_PREFIX + b"%012d" % (len(self._uuids) + 1)
        return self._uuids[real]

    def _text(self, data: bytes) -> bytes:
        data = _UUID.sub(self._uuid, data)
        data = _CERTIFICATE.sub(b'"certificate": "<certificate>"', data)
        data = _FINGERPRINT.sub(b'"certificate_fingerprint": "<fingerprint>"', data)
        return _TIMESTAMP.sub(b'"2000-01-01T00:00:00Z"', data)

    def request(self, request: Any) -> Any:
        """vcrpy's ``before_record_request``."""
        request.uri = self._text(request.uri.encode()).decode()
        return request

    def response(self, response: Dict[str, Any]) -> Dict[str, Any]:
        """vcrpy's ``before_record_response``."""
        headers = response["headers"]
        body = response["body"]["string"]
        if isinstance(body, str):
            body = body.encode()
        # Only JSON is normalised: a pulled file or an image export must replay
        # byte for byte, whatever it happens to contain.
        if any("json" in value for name, values in headers.items()
               if name.lower() == "content-type" for value in values):
            body = self._text(body)
        response["body"]["string"] = body
        headers.pop("Date", None)
        headers.pop("date", None)
        for name in list(headers):
            if name.lower() == "content-length":
                headers[name] = [str(len(body))]
            elif name.lower() == "location":
                headers[name] = [self._text(value.encode()).decode() for value in headers[name]]
        return response


def recorder(cassette_dir: str, record_mode: str = "once", **kwargs: Any) -> Any:
    """A ``vcr.VCR`` that records and replays apitx's Unix socket traffic.

    ``record_mode`` is vcrpy's (``once``, ``none``, ``new_episodes``, ``all``):
    use ``none`` in CI so that a missing recording fails instead of silently
    talking to a server. Other keyword arguments go to ``vcr.VCR``.

    Each cassette gets its own :class:`Normaliser`.
    """
    import vcr  # type: ignore[import-untyped]  # vcrpy ships no type hints

    try:
        recorder = vcr.VCR(cassette_library_dir=cassette_dir, record_mode=record_mode,
                           custom_patches=((UnixSocketConnectionPool, "ConnectionCls",
                                            vcr_connection_class()),),
                           decode_compressed_response=True, **kwargs)
    except (TypeError, ValueError) as exc:  # vcrpy's own refusal of a setting
        raise SettingsError(f"recorder({cassette_dir!r}, record_mode={record_mode!r}): "
                            f"{exc}") from exc
    use_cassette = recorder.use_cassette

    def use_normalised_cassette(path: str, **options: Any) -> Any:
        normaliser = Normaliser()
        options.setdefault("before_record_request", normaliser.request)
        options.setdefault("before_record_response", normaliser.response)
        return use_cassette(path, **options)

    recorder.use_cassette = use_normalised_cassette
    return recorder
