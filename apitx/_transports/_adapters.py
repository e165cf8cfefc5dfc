"""requests adapters for apitx's endpoints: strict bodies, deadlines, pools
sized for the API, a Unix socket adapter, and fork safety.

Every adapter apitx mounts:

- refuses a body shorter than its Content-Length (urllib3 1.26 returns the
  truncated body in silence, and a half-read JSON answer would then pass as
  "not JSON");
- makes connections that keep to the request deadline (:mod:`._deadline`);
- keeps ``maxsize`` connections for reuse (urllib3's default of 10 made an
  API shared by 50 threads open 12-19 new sockets for every 50 GETs), and
  with ``block`` never opens more: a request then waits for a free one,
  within its deadline;
- forgets its pools in a child after ``fork()``: the child shares the
  parent's sockets otherwise, and each would read the other's answers.

>>> import requests
>>> from apitx._transports._adapters import UnixSocketAdapter
>>> session = requests.Session()
>>> session.mount('http+unix://lxd/', UnixSocketAdapter('/var/lib/lxd/unix.socket', maxsize=64))
>>> session.get('http+unix://lxd/1.0').json()['metadata']['environment']['server']
'lxd'
"""

from __future__ import annotations

import os
import weakref
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from ._deadline import DeadlineHTTPConnectionPool, DeadlineHTTPSConnectionPool
from ._unix import UnixSocketConnectionPool

#: Connections an adapter keeps for reuse unless told otherwise.
DEFAULT_POOL_SIZE = 10


class StrictLengthAdapter(HTTPAdapter):
    """requests' adapter, refusing a body shorter than its Content-Length,
    with connections that keep to the request deadline and pools of the
    process's own (a forked child starts afresh).

    The length flag is read while the body is read, so setting it on the
    response before that is enough.
    """

    def __init__(self, maxsize: int = DEFAULT_POOL_SIZE, block: bool = False,
                 **kwargs: Any) -> None:
        kwargs.setdefault("pool_maxsize", maxsize)
        kwargs.setdefault("pool_block", block)
        super().__init__(**kwargs)
        _adapters.add(self)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": DeadlineHTTPConnectionPool,
                                                   "https": DeadlineHTTPSConnectionPool}

    def build_response(self, req: Any, resp: Any) -> requests.Response:
        resp.enforce_content_length = True
        return super().build_response(req, resp)

    def forget_pools(self) -> None:
        """Drop every pooled connection without touching it: after fork(), in
        the child, they belong to the parent. A new pool manager, rather
        than clearing the old one, since a lock the parent held at fork time
        stays held in the child forever."""
        # requests keeps its pool arguments on the adapter (untyped there).
        self.init_poolmanager(self._pool_connections, self._pool_maxsize,  # type: ignore[attr-defined]
                              block=self._pool_block)  # type: ignore[attr-defined]


class UnixSocketAdapter(StrictLengthAdapter):
    """A requests transport adapter that sends everything to one Unix socket.

    Mount it on the prefix of :data:`apitx._endpoint.UNIX_BASE_URL`:

    >>> import requests
    >>> from apitx._transports._adapters import UnixSocketAdapter
    >>> session = requests.Session()
    >>> session.mount('http+unix://lxd/', UnixSocketAdapter('/var/lib/lxd/unix.socket'))
    >>> session.get('http+unix://lxd/1.0/instances').status_code
    200
    """

    def __init__(self, socket_path: str, maxsize: int = DEFAULT_POOL_SIZE,
                 block: bool = False) -> None:
        super().__init__(maxsize=maxsize, block=block, pool_connections=1)
        self.socket_path = socket_path
        self.pool_maxsize = maxsize
        self.pool_block = block
        self.pool = UnixSocketConnectionPool(socket_path, maxsize=maxsize, block=block)

    def get_connection_with_tls_context(self, request: Any, verify: Any,
                                        proxies: Any = None, cert: Any = None) -> Any:
        return self.pool

    def get_connection(self, url: Any, proxies: Any = None) -> Any:
        # requests < 2.32.2 calls this one instead of the method above.
        return self.pool

    def request_url(self, request: Any, proxies: Any) -> str:
        return str(request.path_url)

    def forget_pools(self) -> None:
        super().forget_pools()
        self.pool = UnixSocketConnectionPool(self.socket_path, maxsize=self.pool_maxsize,
                                             block=self.pool_block)

    def close(self) -> None:
        self.pool.close()
        super().close()


#: Every adapter apitx made, so a forked child can make each forget its pools.
_adapters: "weakref.WeakSet[StrictLengthAdapter]" = weakref.WeakSet()


def _forget_pools_after_fork() -> None:
    for adapter in list(_adapters):
        adapter.forget_pools()


os.register_at_fork(after_in_child=_forget_pools_after_fork)
