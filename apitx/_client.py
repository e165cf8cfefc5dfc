"""What the modules under the API need of it, as a Protocol.

Exec, events, files and navigation are written against :class:`Client`, not
against :class:`~apitx.API`: they sit below it and never import it, and
anything that offers these few methods (an API, a sibling from
``using()``, a test's own object) will do. mypy checks that ``API`` does.

Example: a function of the layers below, and an API given to it:

>>> from apitx import API
>>> def status(client: Client, name: str) -> str:
...     return client.request('GET', f'instances/{name}/state').metadata['status']
>>> status(API.factory(), c1)
'Running'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Optional, Protocol, Union

from ._config import TimeoutLike
from ._endpoint import Endpoint
from ._result import APIResult
from ._server import Server
from ._types import Headers, Params, UseDefault

if TYPE_CHECKING:  # a type only: importing it imports websocket-client
    from ._transports import WebSocketConnection


class Client(Protocol):
    """The part of :class:`~apitx.API` the lower modules use."""

    @property
    def endpoint(self) -> Endpoint:
        """The endpoint requests go to now."""

    @property
    def project(self) -> Optional[str]:
        """The project added to requests that name none."""

    @property
    def server(self) -> Server:
        """What the server says about itself (``GET /1.0``, once)."""

    def url(self, url: str) -> str:
        """The full URL of an API path."""

    def request(self, method: str, url: str, *, params: Params = None, json: Any = None,
                data: Any = None, headers: Headers = None,
                timeout: Union[TimeoutLike, UseDefault] = ..., stream: bool = False,
                validate: bool = True, follow_redirects: bool = False) -> APIResult:
        """Send one request (see :meth:`API.request`)."""

    def websocket(self, path: str, params: Optional[Mapping[str, Any]] = None,
                  timeout: TimeoutLike = None) -> WebSocketConnection:
        """Open a websocket at an API path (see :meth:`API.websocket`)."""
