"""apitx for asyncio: :class:`AsyncAPI` and what it returns.

Imported only when used (``apitx.AsyncAPI`` is resolved on first access):
``import apitx`` does not import aiohttp. Needs ``pip install apitx[async]``.

Modules, each with one job: ``_api`` the facade; ``_sender`` prepares and
sends; ``_operations`` waits; ``_events`` the event stream; ``_result`` the
result. They share every rule with the sync client and none of its shells.
"""

from ._api import AsyncAPI
from ._events import AsyncEventStream
from ._exec import AsyncExecControl
from ._result import AsyncAPIResult

__all__ = ["AsyncAPI", "AsyncAPIResult", "AsyncEventStream", "AsyncExecControl"]
