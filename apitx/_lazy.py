"""Work put off from import time to first use: exported names, regular expressions.

A program that sends one request should not pay for importing what it
never uses: websockets, exec, migrations, remotes' YAML, certificates
(issue 19). ``apitx`` and ``apitx._transports`` therefore export most of
their names through a :class:`LazyExports` table (PEP 562): the module
behind a name is imported the first time the name is looked up
(``apitx.API``, ``from apitx import API``), and the value is then stored in
the package, so later lookups cost nothing. ``dir()`` and ``__all__`` still
list every name; type checkers see them through the package's ``if
TYPE_CHECKING:`` imports.

Compiling a regular expression costs 0.1 to 1 ms; redaction's patterns
alone took ~3 ms of every start, for requests that never show a secret. A
:class:`LazyPattern` is compiled the first time it is used.

Example: a package's ``__init__`` sets ``__getattr__ = _exports.attribute``
and ``__dir__ = _exports.names`` (PEP 562); here, called by hand:

>>> _exports = LazyExports('apitx', {'._api': ('API',), '.ensure': None})
>>> _exports.attribute('API'), _exports.attribute('ensure').__name__
(<class 'apitx._api.API'>, 'apitx.ensure')
>>> _WORD = LazyPattern(r'[a-z]+', re.IGNORECASE)
>>> _WORD.fullmatch('Hello')            # compiled here, once
<re.Match object; span=(0, 5), match='Hello'>
"""

from __future__ import annotations

import re
import sys
from typing import Callable, Dict, Iterator, List, Mapping, Optional, Tuple, Union


class LazyExports:
    """Where each lazily exported name of ``package`` comes from.

    ``table`` maps a module, relative to the package (``'._api'``), to the
    names taken from it, or to None when the module itself is the export
    (``'.ensure'`` exports ``ensure``).
    """

    def __init__(self, package: str, table: Mapping[str, Optional[Tuple[str, ...]]]) -> None:
        self.package = package
        #: Each name's module (absolute) and whether the module is the value.
        self.where: Dict[str, Tuple[str, bool]] = {}
        for module, names in table.items():
            if names is None:
                self.where[module.lstrip(".")] = (package + module, True)
            for name in names or ():
                self.where[name] = (package + module, False)

    def attribute(self, name: str) -> object:
        """The value of ``package.name``, importing its module (the package's
        ``__getattr__``: called only for names not yet in the package)."""
        found = self.where.get(name)
        if found is None:
            raise AttributeError(f"module {self.package!r} has no attribute {name!r}")
        module_name, whole = found
        # The import statement's machinery, not importlib.import_module():
        # only it reports to ``python -X importtime``, which must show each
        # module on its own line to say what a lazy name cost.
        __import__(module_name)
        module = sys.modules[module_name]
        value = module if whole else getattr(module, name)
        setattr(sys.modules[self.package], name, value)  # found at once from now on
        return value

    def names(self) -> List[str]:
        """Every name of the package, imported or not (its ``__dir__``)."""
        return sorted(set(vars(sys.modules[self.package])) | set(self.where))


class LazyPattern:
    """``re.compile(pattern, flags)``, done on first use; the methods apitx uses."""

    def __init__(self, pattern: str, flags: int = 0) -> None:
        self._source = (pattern, flags)
        self._compiled: Optional[re.Pattern[str]] = None

    @property
    def compiled(self) -> re.Pattern[str]:
        """The compiled pattern (two threads may both compile it: the same value)."""
        if self._compiled is None:
            self._compiled = re.compile(*self._source)
        return self._compiled

    def search(self, string: str, pos: int = 0) -> Optional[re.Match[str]]:
        return self.compiled.search(string, pos)

    def match(self, string: str, pos: int = 0) -> Optional[re.Match[str]]:
        return self.compiled.match(string, pos)

    def fullmatch(self, string: str) -> Optional[re.Match[str]]:
        return self.compiled.fullmatch(string)

    def finditer(self, string: str) -> Iterator[re.Match[str]]:
        return self.compiled.finditer(string)

    def sub(self, replacement: Union[str, Callable[[re.Match[str]], str]], string: str) -> str:
        return self.compiled.sub(replacement, string)
