"""Remotes, read (and written) as ``lxc`` and ``incus`` keep them.

A remote is a name for a server: ``API.factory('web:')`` or ``apitx -e web:``
reads it from the first client config dir that has it, in this order:

1. ``$APITX_CONF`` (default ``~/.config/apitx``): apitx's own, where
   ``apitx remote add`` writes;
2. ``$LXD_CONF``, the snap's ``~/snap/lxd/common/config``, ``~/.config/lxc``;
3. ``$INCUS_CONF``, ``~/.config/incus``.

Each dir holds ``config.yml`` (``remotes: {name: {addr, protocol,
auth_type, project, public}}``), the client certificate ``client.crt`` and
``client.key``, and one pinned server certificate per remote in
``servercerts/<name>.crt``. apitx writes that same format, so
``LXD_CONF=~/.config/apitx lxc remote list`` reads apitx's remotes.

A remote's ``servercerts`` file is a pin whatever its basicConstraints: ``lxc``
trusts it as that exact certificate. A remote without one (a server with a
certificate from a public CA) gets ordinary verification.

>>> import tempfile
>>> from apitx._remotes import resolve_remote, save_remote
>>> here = tempfile.TemporaryDirectory()
>>> env = {'APITX_CONF': here.name, 'HOME': here.name}   # no lxc or incus config here
>>> pem = open('/var/lib/apitx-sandbox/server.crt', 'rb').read()
>>> save_remote(here.name, 'web', 'https://127.0.0.1:8443', 'lxd', pem)
>>> remote = resolve_remote('web:', env)
>>> remote.endpoint, remote.project
(Endpoint(base_url='https://127.0.0.1:8443', socket_path=None, project=None), 'default')
>>> remote.api_options()['fingerprint']          # its servercerts/web.crt, pinned
Pin(digests=frozenset({...}), source='/tmp/.../servercerts/web.crt')
>>> here.cleanup()
"""

from __future__ import annotations

import os
import re
import stat
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union
from urllib.parse import urlsplit, urlunsplit

from . import _checks
from ._atomic import atomic_write
from ._endpoint import Endpoint
from ._exceptions import EndpointError
from ._redact import REDACTED, redact_url
from ._transports import FingerprintLike, Pin
from ._types import Cert

#: ``name:`` as ``lxc`` writes a remote; a name holds no ``:`` or ``/``.
_REMOTE = re.compile(r"([A-Za-z0-9][A-Za-z0-9_.+-]*):")

#: Protocols of servers apitx talks to; ``simplestreams`` is an image index.
_API_PROTOCOLS = ("lxd", "incus")

#: What a ``config.yml`` may be, at most, before it is read: every config
#: dir is read on every ``API.factory('name:')``, and a hostile or broken file
#: (gigabytes, a FIFO, a YAML alias bomb, nesting that recurses the parser to
#: death) must end in one EndpointError, not a hang. ``lxc`` writes about 12
#: YAML nodes and 150 bytes a remote and 3 levels of nesting: these limits
#: are a thousand remotes and more, and bound the parse to about a second.
MAX_CONFIG_BYTES = 1 << 20
MAX_CONFIG_NODES = 20_000
MAX_CONFIG_DEPTH = 32


@dataclass(frozen=True)
class ConfigDir:
    """One client config dir: where it came from (``$LXD_CONF``…), its path,
    and whose it is (``apitx``, ``lxd``, ``incus``: a ``unix://`` remote
    means that daemon's local socket)."""

    origin: str
    path: str
    flavour: str


def config_dirs(environ: Optional[Mapping[str, str]] = None) -> List[ConfigDir]:
    """Every config dir remotes are read from, in precedence order (see module doc)."""
    env = os.environ if environ is None else _checks.mapping(environ, "environ=")
    home = env.get("HOME") or os.path.expanduser("~")
    candidates = [
        apitx_config_dir(environ=env),
        ConfigDir("$LXD_CONF", env.get("LXD_CONF", ""), "lxd"),
        ConfigDir("lxd snap", os.path.join(home, "snap", "lxd", "common", "config"), "lxd"),
        ConfigDir("lxc", os.path.join(home, ".config", "lxc"), "lxd"),
        ConfigDir("$INCUS_CONF", env.get("INCUS_CONF", ""), "incus"),
        ConfigDir("incus", os.path.join(home, ".config", "incus"), "incus"),
    ]
    found: List[ConfigDir] = []
    for candidate in candidates:
        if candidate.path and all(os.path.abspath(candidate.path) != os.path.abspath(d.path)
                                  for d in found):
            found.append(candidate)
    return found


def own_config_dir(environ: Optional[Mapping[str, str]] = None) -> str:
    """apitx's config dir: ``$APITX_CONF``, else ``~/.config/apitx``."""
    env = os.environ if environ is None else environ
    home = env.get("HOME") or os.path.expanduser("~")
    return env.get("APITX_CONF") or os.path.join(home, ".config", "apitx")


def apitx_config_dir(path: Optional[str] = None,
                     environ: Optional[Mapping[str, str]] = None) -> ConfigDir:
    """The config dir apitx writes remotes to: ``path`` (its origin
    ``config_dir=``, as the caller named it), else :func:`own_config_dir`."""
    if path is None or path == "":
        return ConfigDir("$APITX_CONF", own_config_dir(environ), "apitx")
    return ConfigDir("config_dir=", _checks.local_path(path, "config_dir="), "apitx")


@dataclass(frozen=True)
class RemoteSettings:
    """A remote as a config dir describes it, and what :meth:`API.factory` needs.

    ``addr`` is as written (``https://host:8443``, ``unix://``,
    ``unix:///path``; :attr:`shown_addr` to show it); ``project`` is None
    when the config names none; ``builtin`` is True for the ``local`` remote
    that exists with no config defining it, as in ``lxc`` (the local
    daemon's socket).

    >>> import tempfile
    >>> from apitx import list_remotes
    >>> from apitx._remotes import save_remote
    >>> with tempfile.TemporaryDirectory() as here:
    ...     save_remote(here, 'web', 'https://user:secret@10.0.0.5:8443', 'lxd', b'')
    ...     [(r.name, r.shown_addr, r.builtin) for r in list_remotes({'HOME': '/nowhere', 'APITX_CONF': here})]
    [('web', 'https://<redacted>@10.0.0.5:8443', False), ('local', 'unix://', True)]
    """

    name: str
    config_dir: ConfigDir
    addr: str
    protocol: str = "lxd"
    auth_type: str = "tls"
    project: Optional[str] = None
    public: bool = False
    builtin: bool = False

    @property
    def shown_addr(self) -> str:
        """``addr`` as it may be shown: a password in it (``https://u:pw@host``) redacted,
        anything else as written (``unix://`` stays ``unix://``)."""
        try:
            redacted = redact_url(self.addr)
            # redact_url rewrites what it parses (unix:// becomes unix:): compare like with like.
            return self.addr if redacted == urlunsplit(urlsplit(self.addr)) else redacted
        except ValueError:  # not a URL ('https://[::1'): still no password shown
            head, at, host = self.addr.rpartition("@")
            return f"{head.partition('://')[0]}://{REDACTED}@{host}" if at else self.addr

    @property
    def client_cert(self) -> Optional[Tuple[str, str]]:
        """``(client.crt, client.key)`` of the remote's config dir, when both exist."""
        pair = tuple(os.path.join(self.config_dir.path, f) for f in ("client.crt", "client.key"))
        return (pair[0], pair[1]) if all(os.path.exists(p) for p in pair) else None

    @property
    def server_cert(self) -> Optional[str]:
        """``servercerts/<name>.crt``, when it exists."""
        path = _server_cert_path(self.config_dir.path, self.name)
        return path if os.path.exists(path) else None

    @property
    def endpoint(self) -> Endpoint:
        """Where the remote is; ``unix://`` is the local daemon of the dir's flavour."""
        if self.addr.rstrip("/") in ("unix:", "unix://"):
            return (incus_socket() if self.config_dir.flavour == "incus" else
                    Endpoint.discover(family="lxd"))
        return Endpoint.parse(self.addr)

    def api_options(self) -> Dict[str, Any]:
        """``API.factory`` keyword arguments: ``cert``, ``fingerprint`` (the pin), ``project``."""
        where = f"remote {self.name}: in {self.config_dir.path}/config.yml"
        if self.protocol not in _API_PROTOCOLS:
            raise EndpointError(
                f"{where} has protocol {self.protocol!r}: apitx talks to LXD and Incus servers "
                f"(protocol {' or '.join(_API_PROTOCOLS)}), not image indexes")
        if self.auth_type not in ("", "tls"):
            raise EndpointError(f"{where} uses auth_type {self.auth_type!r}: apitx supports "
                                "TLS client certificates only (apitx remote add makes one)")
        options: Dict[str, Any] = {}
        if self.project and self.project != "default":
            options["project"] = self.project
        if self.endpoint.socket_path:
            return options
        if self.client_cert:
            options["cert"] = self.client_cert
        if self.server_cert:
            options["fingerprint"] = Pin.from_file(self.server_cert)
        return options


def incus_socket(environ: Optional[Mapping[str, str]] = None) -> Endpoint:
    """The local Incus socket, found as Incus's own client finds it: ``$INCUS_SOCKET``,
    ``$INCUS_DIR/unix.socket``, ``/run/incus/unix.socket`` if it exists, else
    ``/var/lib/incus/unix.socket``."""
    env = os.environ if environ is None else environ
    if env.get("INCUS_SOCKET"):
        return Endpoint.parse(os.path.abspath(env["INCUS_SOCKET"]))
    if env.get("INCUS_DIR"):
        return Endpoint.parse(os.path.join(os.path.abspath(env["INCUS_DIR"]), "unix.socket"))
    run = "/run/incus/unix.socket"
    return Endpoint.parse(run if os.path.exists(run) else "/var/lib/incus/unix.socket")


def read_config(config_dir: str) -> Dict[str, Any]:
    """``config.yml`` of a dir as a dict; ``{}`` when there is none.

    Anything that is not an lxc/incus client config raises
    :class:`EndpointError` naming the file and what is wrong (bad YAML with
    its line; not a regular file, too large, not UTF-8, a YAML alias, too
    many nodes or levels: see :data:`MAX_CONFIG_BYTES`), before it costs
    more than reading :data:`MAX_CONFIG_BYTES`.
    """
    path = os.path.join(config_dir, "config.yml")
    text = _read_text(path)
    data = None if text is None else _parse_yaml(text, path)
    if data is None:
        return {}
    if not isinstance(data, dict) or not isinstance(data.get("remotes", {}), dict):
        raise EndpointError(f"{path}: not an lxc/incus client config (expected a mapping "
                            "with 'remotes: {name: {addr: ...}}'): fix or remove that file")
    return data


def _read_text(path: str) -> Optional[str]:
    """The text of ``path``, None when there is none; never blocks, never reads much.

    O_NONBLOCK: opening a FIFO (or a device) would otherwise wait for a
    writer forever; it is then refused for what it is.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise EndpointError(f"cannot read {path}: {exc.strerror}: fix its permissions, or "
                            "remove it") from exc
    try:
        data = _read_config_bytes(fd, path)
    finally:
        os.close(fd)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EndpointError(f"{path}: not UTF-8 text (byte {exc.start + 1} of the file): "
                            "fix or remove that file") from None


def _read_config_bytes(fd: int, path: str) -> bytes:
    """At most :data:`MAX_CONFIG_BYTES` of a regular file, or the EndpointError that says why not."""
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        raise EndpointError(f"{path} is not a regular file: replace it with an lxc/incus "
                            "client config, or remove it")
    data = b""
    try:
        # Read, not trust st_size: a file may grow, or (in /proc) say 0.
        while len(data) <= MAX_CONFIG_BYTES:
            piece = os.read(fd, MAX_CONFIG_BYTES + 1 - len(data))
            if not piece:
                return data
            data += piece
    except OSError as exc:
        raise EndpointError(f"cannot read {path}: {exc.strerror}") from exc
    raise EndpointError(f"{path} is larger than {MAX_CONFIG_BYTES >> 20} MiB: not an "
                        "lxc/incus client config; fix or remove that file")


def _parse_yaml(text: str, path: str) -> Any:
    """``text`` as YAML, once its events showed it small and alias-free."""
    import yaml  # here, not above: only remote users pay for importing it

    # libyaml when present: PyYAML's own parser takes ~20 s on a MiB.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        _check_events(yaml.parse(text, Loader=loader), path)
        return yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise EndpointError(f"{path}{_line(getattr(exc, 'problem_mark', None))}: bad YAML "
                            f"({problem}): fix or remove that file") from exc


def _line(mark: Any) -> str:
    """`` line N`` for a YAML mark (where a problem is), or nothing without one."""
    return f" line {mark.line + 1}" if mark is not None else ""


def _check_events(events: Iterable[Any], path: str) -> None:
    """Refuse YAML aliases, and more nodes or levels than a client config has.

    An alias (``*name``) repeats a node without copying it: nine lines of
    them are a billion nodes to anything that walks the result (a message
    that shows it, a save that writes it back). ``lxc`` never writes one.
    """
    import yaml

    nodes = depth = 0
    for event in events:
        if isinstance(event, yaml.AliasEvent):
            raise EndpointError(f"{path}{_line(event.start_mark)}: a YAML alias "
                                f"(*{event.anchor}): lxc and incus never write one; write the "
                                "value out, or remove that file")
        nodes += isinstance(event, yaml.NodeEvent)
        depth += (isinstance(event, yaml.CollectionStartEvent)
                  - isinstance(event, yaml.CollectionEndEvent))
        if nodes > MAX_CONFIG_NODES or depth > MAX_CONFIG_DEPTH:
            raise EndpointError(f"{path}{_line(event.start_mark)}: more than "
                                f"{MAX_CONFIG_NODES} YAML nodes or {MAX_CONFIG_DEPTH} levels: "
                                "not an lxc/incus client config; fix or remove that file")


def load_remotes(config_dir: ConfigDir) -> Dict[str, RemoteSettings]:
    """Every remote one config dir defines, by name."""
    return _remotes_in(read_config(config_dir.path), config_dir)


def _remotes_in(config: Dict[str, Any], config_dir: ConfigDir) -> Dict[str, RemoteSettings]:
    """The remotes of a config read from ``config_dir``, by name."""
    return {str(name): _remote(str(name), entry, config_dir)
            for name, entry in (config.get("remotes") or {}).items()}


def _remote(name: str, entry: Any, config_dir: ConfigDir) -> RemoteSettings:
    if not isinstance(entry, dict) or not isinstance(entry.get("addr"), str):
        raise EndpointError(f"{config_dir.path}/config.yml: remote {name!r} has no 'addr' "
                            "string: fix or remove it")
    default_protocol = "incus" if config_dir.flavour == "incus" else "lxd"
    return RemoteSettings(
        name=name, config_dir=config_dir, addr=entry["addr"],
        protocol=str(entry.get("protocol") or default_protocol),
        auth_type=str(entry.get("auth_type") or "tls"),
        project=str(entry["project"]) if entry.get("project") else None,
        public=bool(entry.get("public", False)))


def list_remotes(environ: Optional[Mapping[str, str]] = None) -> List[RemoteSettings]:
    """Every remote reachable by name, as ``-e NAME:`` finds it: the first dir
    defining a name wins, and ``local`` is there even when none defines it.

    >>> from apitx import list_remotes
    >>> [(r.name, r.builtin) for r in list_remotes({'HOME': '/nowhere'})]   # no config at all
    [('local', True)]
    """
    dirs = config_dirs(environ)
    winners: Dict[str, RemoteSettings] = {}
    for config_dir in dirs:
        for name, settings in load_remotes(config_dir).items():
            winners.setdefault(name, settings)
    winners.setdefault("local", _builtin_local(dirs))
    return list(winners.values())


def _builtin_local(dirs: List[ConfigDir]) -> RemoteSettings:
    """``local`` where no config defines it, as in ``lxc``: the local daemon's socket."""
    return RemoteSettings(name="local", config_dir=dirs[0], addr="unix://", builtin=True)


def find_remote(name: str, environ: Optional[Mapping[str, str]] = None) -> RemoteSettings:
    """The remote ``name``, from the first config dir that defines it.

    ``local`` exists even with no config at all, as in ``lxc``: the local
    daemon's socket. Unknown names raise :class:`EndpointError` listing every
    dir searched.
    """
    dirs = config_dirs(environ)
    for config_dir in dirs:
        remotes = load_remotes(config_dir)
        if name in remotes:
            return remotes[name]
    if name == "local":
        return _builtin_local(dirs)
    searched = ", ".join(f"{d.path}/config.yml ({d.origin})" for d in dirs)
    raise EndpointError(f"no remote named {name!r}; searched {searched}. Add it with "
                        f"`apitx remote add {name} https://HOST:8443 --token TOKEN`")


def resolve_remote(text: Any, environ: Optional[Mapping[str, str]] = None
                   ) -> Optional[RemoteSettings]:
    """The remote ``text`` names when it is ``name:``, else None (a path or URL).

    >>> from apitx._remotes import resolve_remote
    >>> resolve_remote('/var/lib/lxd/unix.socket') is None
    True
    >>> resolve_remote('nowhere:', {'HOME': '/nowhere'})
    Traceback (most recent call last):
      ...
    apitx.EndpointError: no remote named 'nowhere'; searched /nowhere/.config/apitx/config.yml ($APITX_CONF), ...
    """
    match = _REMOTE.fullmatch(text) if isinstance(text, str) else None
    return find_remote(match.group(1), environ) if match else None


def apply_remote(endpoint: Any, cert: Cert, verify: Union[bool, str],
                 fingerprint: FingerprintLike, project: Optional[str]
                 ) -> Tuple[Any, Cert, FingerprintLike, Optional[str]]:
    """``API.factory``'s endpoint and settings, with a remote's filled in.

    For ``'name:'``: the remote's endpoint, and its client certificate, pin
    and project wherever the caller left the default (a ``verify=`` of the
    caller's own replaces the remote's pin). Anything else passes unchanged.
    """
    remote = resolve_remote(endpoint)
    if remote is None:
        return endpoint, cert, fingerprint, project
    options = remote.api_options()
    if verify is True and fingerprint is None:
        fingerprint = options.get("fingerprint")
    return (remote.endpoint, options.get("cert") if cert is None else cert, fingerprint,
            options.get("project") if project is None else project)


def save_remote(config_dir: str, name: str, addr: str, protocol: str,
                server_cert_pem: bytes, project: Optional[str] = None) -> None:
    """Write a remote into ``config_dir`` as ``lxc`` would: its entry in
    ``config.yml`` (other keys and remotes kept) and ``servercerts/<name>.crt``."""
    check_name(name)
    config = read_config(config_dir)
    remotes = config.get("remotes") or {}
    remotes[name] = {"addr": addr, "auth_type": "tls", "project": project or "default",
                     "protocol": protocol, "public": False}
    config["remotes"] = remotes
    os.makedirs(os.path.join(config_dir, "servercerts"), mode=0o750, exist_ok=True)
    _write(_server_cert_path(config_dir, name), server_cert_pem)
    _write_config(config_dir, config)


def remove_remote(name: str, *, config_dir: Optional[str] = None) -> RemoteSettings:
    """Forget remote ``name`` of apitx's config dir (``config_dir``, by default
    ``$APITX_CONF`` or ``~/.config/apitx``): its entry in ``config.yml`` and
    its pinned certificate. Return the remote as it was.

    Only remotes apitx added (its own dir) are removed: lxc's and incus's are
    theirs. A name lxc could not use (``../x``) is refused before any file is
    touched; one the dir does not define raises :class:`EndpointError`.

    >>> import tempfile
    >>> from apitx import remove_remote
    >>> from apitx._remotes import save_remote
    >>> here = tempfile.TemporaryDirectory()
    >>> save_remote(here.name, 'web', 'https://10.0.0.5:8443', 'lxd', b'')
    >>> remove_remote('web', config_dir=here.name).addr
    'https://10.0.0.5:8443'
    >>> remove_remote('web', config_dir=here.name)
    Traceback (most recent call last):
      ...
    apitx.EndpointError: no remote named 'web' in /tmp/.../config.yml: `apitx remote list` shows where each remote lives
    >>> here.cleanup()
    """
    check_name(name)
    own = apitx_config_dir(config_dir)
    config = read_config(own.path)
    removed = _remotes_in(config, own).get(name)
    if removed is None:
        raise EndpointError(f"no remote named {name!r} in {own.path}/config.yml: "
                            "`apitx remote list` shows where each remote lives")
    del config["remotes"][name]
    _write_config(own.path, config)
    with suppress(FileNotFoundError):
        os.unlink(_server_cert_path(own.path, name))
    return removed


def _server_cert_path(config_dir: str, name: str) -> str:
    return os.path.join(config_dir, "servercerts", f"{name}.crt")


def _write_config(config_dir: str, config: Dict[str, Any]) -> None:
    import yaml

    _write(os.path.join(config_dir, "config.yml"),
           yaml.safe_dump(config, default_flow_style=False, sort_keys=False).encode())


def _write(path: str, data: bytes) -> None:
    """Write a file whole or not at all: a crash never leaves half a config."""
    with atomic_write(path) as out:
        out.write(data)


def check_name(name: str) -> None:
    """Refuse a remote name ``lxc`` could not use (``:``, ``/``, spaces…)."""
    if not isinstance(name, str) or not _REMOTE.fullmatch(f"{name}:"):
        raise EndpointError(f"remote name {name!r} is not usable: use letters, digits, "
                            "'-', '_', '.', '+', starting with a letter or digit")
