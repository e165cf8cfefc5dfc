"""A cluster's members, the one in use, and when a request may move on.

An API made with several endpoints (a cluster's members) talks to one at a
time. A request that cannot reach it moves on to the next member, whatever
its method (nothing was sent); one that failed after it was sent moves on
only if it is idempotent and its body can be sent again. Each request tries
each member at most once. The member that answered stays in use.

Pure decisions and a little state behind a lock: the sync and async clients
share it.

>>> from apitx._endpoint import Endpoint
>>> from apitx._failover import Members
>>> m1, m2, m3 = (Endpoint.parse(f'https://10.0.0.{n}:8443') for n in (1, 2, 3))
>>> members = Members((m1, m2, m3))
>>> members.current is m1
True
>>> members.advance(m1) is m2 is members.current          # m1 failed: m2 from now on
True
"""

from __future__ import annotations

import threading
from typing import Any, Dict, Optional, Sequence, Tuple

from ._endpoint import Endpoint
from ._exceptions import EndpointError

#: Methods that do the same thing however often they are sent.
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


class Members:
    """The endpoints of one API and the one requests go to now.

    Shared by an API and its siblings (``using()``): a member found dead by
    one is passed over by all.
    """

    def __init__(self, endpoints: Sequence[Endpoint]) -> None:
        if not endpoints:
            raise EndpointError("give at least one endpoint")
        self.endpoints: Tuple[Endpoint, ...] = tuple(endpoints)
        self._current = 0
        self._lock = threading.Lock()

    @property
    def current(self) -> Endpoint:
        """The endpoint requests go to now."""
        return self.endpoints[self._current]

    def of(self, url: str) -> Endpoint:
        """The member a URL was made for (its base URL starts it); the one in
        use when none was (a URL of another server is refused where it is made)."""
        if len(self.endpoints) > 1:
            for endpoint in self.endpoints:
                if url.startswith(endpoint.base_url + "/") or url == endpoint.base_url:
                    return endpoint
        return self.endpoints[self._current]

    def __len__(self) -> int:
        return len(self.endpoints)

    # A lock cannot be copied or pickled (an API is both): a copy gets its own.
    def __getstate__(self) -> Dict[str, Any]:
        return {"endpoints": self.endpoints, "_current": self._current}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def advance(self, failed: Endpoint) -> Endpoint:
        """The next member after ``failed``, which becomes the one in use
        (unless another thread moved on already: then the one it chose)."""
        with self._lock:
            if self.endpoints[self._current] == failed:
                self._current = (self._current + 1) % len(self.endpoints)
            return self.endpoints[self._current]


def may_try_elsewhere(sent: Optional[bool], method: Optional[str], body: Any) -> bool:
    """True when a request that failed may be sent to another member: it
    never left (any method), or it is idempotent and its body (none, bytes
    or text) can be sent again; a stream already read cannot.

    >>> may_try_elsewhere(True, 'POST', b'{}'), may_try_elsewhere(False, 'POST', b'{}')
    (False, True)
    """
    if sent is False:
        return True
    return (method or "") in IDEMPOTENT and (body is None or isinstance(body, (bytes, str)))
