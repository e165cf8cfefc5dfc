"""Immutable value objects, for the price of a class statement.

apitx's settings and descriptions (:class:`~apitx.Timeout`,
:class:`~apitx.Endpoint`, :class:`~apitx.Server`...) are small immutable
values, compared, hashed and shown by their fields. They were frozen
dataclasses, but every ``apitx`` command paid for that before sending a
byte (issue 19): importing ``dataclasses`` costs ~7 ms (it imports
``inspect``, ``ast`` and ``dis``), and each frozen dataclass ~0.5 ms more to
make, since its methods are written and compiled at import. :class:`Value`
behaves the same way with methods written once, here: a class writes its
``__init__``, which stores the fields with :meth:`Value._set`, in order;
equality, hashing and ``repr`` follow those fields, and assigning to one
later raises ``AttributeError``, as a frozen dataclass does.

The modules a plain request imports use it; the others keep dataclasses.

Example:

>>> class Span(Value):
...     start: float
...     end: float
...
...     def __init__(self, start: float, end: float = 0.0) -> None:
...         self._set(start=start, end=end)
>>> Span(1.0) == Span(1.0, 0.0), Span(1.0)
(True, Span(start=1.0, end=0.0))
>>> Span(1.0).end = 2.0
Traceback (most recent call last):
  ...
AttributeError: cannot assign to field 'end': a Span is immutable; make another
"""

from __future__ import annotations

from typing import Any, Tuple


class Value:
    """An immutable value: its fields are what ``__init__`` gave :meth:`_set`."""

    def _set(self, **fields: Any) -> None:
        """Store the fields (only ``__init__`` calls this, once), in the order given."""
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    def _fields(self) -> Tuple[Any, ...]:
        return tuple(vars(self).values())

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"cannot assign to field {name!r}: a {type(self).__name__} "
                             "is immutable; make another")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}: a {type(self).__name__} "
                             "is immutable")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._fields() == tuple(vars(other).values())

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value in vars(self).items())
        return f"{type(self).__qualname__}({shown})"
