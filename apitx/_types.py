"""Type aliases and sentinels shared by the layers; imports nothing of apitx.

Example: :data:`USE_DEFAULT` tells "not given" from None ("no limit"):

>>> def get(url: str, *, params: Params = None,
...         timeout: Union[float, None, UseDefault] = USE_DEFAULT) -> str:
...     return "the API's timeout" if timeout is USE_DEFAULT else f'timeout={timeout}'
>>> get('instances'), get('instances', timeout=None)
("the API's timeout", 'timeout=None')
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence, Tuple, Union

#: Query parameters as requests takes them: a mapping, pairs, or a string.
Params = Union[Mapping[str, Any], Sequence[Tuple[str, Any]], str, None]
#: Request headers: names to str (or bytes) values.
Headers = Union[Mapping[str, Union[str, bytes]], None]
#: Client certificate: one PEM file holding both, or ``(certificate, key)``.
Cert = Union[str, Tuple[str, str], None]


class UseDefault:
    """The type of :data:`USE_DEFAULT`: "the API's own setting", as distinct
    from None (which, for a timeout, means "no limit")."""

    def __repr__(self) -> str:
        return "USE_DEFAULT"


USE_DEFAULT = UseDefault()
