"""Sphinx settings for apitx's documentation site.

Built by scripts/test in strict mode, so that a broken reference fails the
tests like a broken assertion would::

    python3 -m sphinx -W --keep-going -n -q docs build/docs

Sphinx because apitx's docstrings are reST (``:class:``, ``:meth:``,
``Example::``), which autodoc renders as they are; the guide pages are
Markdown (myst-parser); furo is the theme.

Two rules of our own run inside the build (:func:`setup`):

- a reference to a public object by its private home (the type hint
  ``apitx._result.APIResult``, or ``:func:`apitx._exec.run_exec``` in a
  docstring) resolves to its public name (``apitx.APIResult``): readers are
  sent to the public name, never to a private module;
- every public name (``apitx.__all__``, the async client's names,
  ``apitx.testing.__all__``, ``apitx.ensure.__all__``) must be documented in
  the reference, or the build fails naming what is missing.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

import apitx
from apitx import testing

logger = logging.getLogger(__name__)

project = "apitx"
author = "the apitx developers"
copyright = "2016-2026, the apitx developers"
release = version = apitx.__version__

extensions = ["sphinx.ext.autodoc", "myst_parser"]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build"]
html_theme = "furo"
html_title = f"apitx {release}"
# Guide pages link to each other's sections with [text](page.md#section).
myst_heading_anchors = 3

nitpicky = True
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True}

#: The modules whose public names the reference must document, and the names.
PUBLIC: Dict[str, List[str]] = {
    "apitx": [name for name in apitx.__all__ if name not in ("ensure", "migrate")]
    + ["AsyncAPI", "AsyncAPIResult", "AsyncEventStream", "AsyncExecControl"],
    "apitx.testing": list(testing.__all__),
    "apitx.ensure": list(apitx.ensure.__all__),
    "apitx.migrate": list(apitx.migrate.__all__),
}

# Names in signatures that have no page of their own, each unlinked on purpose.
# Other projects' types: the build runs offline, so no other project's
# inventory (intersphinx) can be fetched; they show as plain names.
nitpick_ignore_regex = [
    ("py:class", r"(requests|urllib3|aiohttp|websocket|cryptography|yaml)(\..*)?"),
    ("py:class", r"(os|logging|ssl|socket|asyncio|pathlib|io)\..*"),
    # Sphinx cuts the type of a NamedTuple field that is an alias of a
    # generic (ensure.Plan's ``Diff``, ``Dict[str, Any]``) at its comma.
    ("py:obj", r"typing\.(Dict|Mapping)\[str"),
]

#: Private names that public signatures and docstrings mention today (type
#: aliases, protocols, base classes). Reported to be made public, documented
#: or dropped from the docstrings; until then they show unlinked.
PRIVATE_IN_SIGNATURES = [
    # type aliases (apitx._types, apitx._config, apitx._facade, apitx._transports)
    "Cert", "EndpointsLike", "FingerprintLike", "TimeoutLike", "TraceLike",
    "apitx._types.UseDefault", "apitx._verbs.R", "apitx._resource.R", "apitx._facade.FacadeT",
    # protocols and classes a public signature takes or returns
    "Transport", "apitx._transports._base.Transport",
    "apitx._transports._aiobase.AsyncTransport", "apitx._transports.HTTPTransport",
    "apitx._transports._websocket.WebSocketConnection",
    "apitx._transports._aiows.AsyncWebSocketConnection",
    "apitx._transports._unix.UnixSocketConnection", "apitx._exceptions.Transaction",
    "apitx._client.Client", "apitx._result.Waits", "apitx._result.Route", "BaseResult",
    "apitx._resource.Requester", "apitx._tracing.Tracer", "apitx._remotes.ConfigDir",
    "AsyncFiles", "apitx._aio._files.AsyncFiles", "Diff", "apitx._result.ResultT",
    "apitx._render.Exchange", "apitx._models.Response", "apitx._aio._models.Response",
    "apitx._aio._result.AsyncWaits",
    # Named in signatures by type-only imports (the API imports them only when
    # used, issue 19): unresolved strings to Sphinx, shown as their names.
    "ExecInput", "ExecOutput", "Tracer", "WebSocketConnection",
]
#: Docstrings of public objects that send readers to private names (or to an
#: attribute no page documents). Reported to be fixed in the docstrings:
#: remove each line when its docstring is.
PRIVATE_IN_DOCSTRINGS: List[Tuple[str, str]] = []
nitpick_ignore = [("py:class", name) for name in PRIVATE_IN_SIGNATURES]


def public_target(target: str) -> Optional[str]:
    """The documented public name of ``target`` when it names a public object
    (or a member of one) by a private home or by its bare name, else None.

    >>> public_target('apitx._api.API.using'), public_target('AsyncAPIResult')
    ('apitx.API.using', 'apitx.AsyncAPIResult')
    """
    parts = target.split(".")
    for index in range(len(parts), 0, -1):
        if index > 1 and parts[0] != "apitx":
            continue
        for module, names in PUBLIC.items():
            if parts[index - 1] in names:
                return ".".join([module, parts[index - 1], *parts[index:]])
    return None


def resolve_public(app: Sphinx, env: BuildEnvironment, node: Any,
                   contnode: nodes.Element) -> Optional[nodes.Element]:
    """``missing-reference``: try the public name before giving up."""
    if node.get("refdomain") != "py":
        return None
    target = public_target(node["reftarget"])
    if target is None or target == node["reftarget"]:
        return None
    resolved: Optional[nodes.Element] = env.get_domain("py").resolve_xref(
        env, node["refdoc"], app.builder, node["reftype"], target, node, contnode)
    return resolved


def check_coverage(app: Sphinx, env: BuildEnvironment) -> None:
    """``env-check-consistency``: every public name has its entry."""
    documented = env.get_domain("py").objects  # type: ignore[attr-defined]
    for module, names in PUBLIC.items():
        for name in names:
            if f"{module}.{name}" not in documented:
                logger.warning("the reference does not document %s.%s: add it to a page "
                               "of docs/reference/", module, name)


ROOT = Path(__file__).resolve().parent.parent


def layers() -> List[Tuple[int, str, str]]:
    """(layer, module, what it owns) from the import-linter contract in
    pyproject.toml, top to bottom, each module's summary the first
    paragraph of its docstring: the table cannot drift from the code."""
    with open(ROOT / "pyproject.toml", "rb") as handle:
        contracts = tomllib.load(handle)["tool"]["importlinter"]["contracts"]
    rows = contracts[0]["layers"]
    table = []
    for depth, row in enumerate(rows):
        for module in re.split(r"\s*[:|]\s*", row):
            path = ROOT / "apitx" / f"{module}.py"
            if not path.exists():
                path = ROOT / "apitx" / module / "__init__.py"
            doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
            table.append((len(rows) - depth, module, " ".join(doc.split("\n\n")[0].split())))
    return table


class Layers(SphinxDirective):
    """``{apitx-layers}``: the layers table, made from the code (:func:`layers`)."""

    def run(self) -> List[nodes.Node]:
        lines = [".. list-table::", "   :header-rows: 1", "   :widths: 1 3 12", "",
                 "   * - layer", "     - module", "     - owns"]
        for depth, module, owns in layers():
            lines += [f"   * - {depth}", f"     - ``apitx.{module}``", f"     - {owns}"]
        container = nodes.container()
        self.state.nested_parse(StringList(lines, "pyproject.toml"), 0, container)
        return list(container.children)


def setup(app: Sphinx) -> Dict[str, Any]:
    app.add_directive("apitx-layers", Layers)
    app.connect("missing-reference", resolve_public)
    app.connect("env-check-consistency", check_coverage)
    return {"parallel_read_safe": True}
