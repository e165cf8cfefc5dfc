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

Example::

    settings = resolve_remote('web:')      # None for anything that is not 'name:'
    settings.endpoint, settings.project    # 'https://10.0.0.5:8443', 'default'
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from ._atomic import atomic_write
from ._endpoint import Endpoint
from ._exceptions import EndpointError
from ._transports import FingerprintLike, Pin
from ._types import Cert

#: ``name:`` as ``lxc`` writes a remote; a name holds no ``:`` or ``/``.
_REMOTE = re.compile(r"([A-Za-z0-9][A-Za-z0-9_.+-]*):")

#: Protocols of servers apitx talks to; ``simplestreams`` is an image index.
_API_PROTOCOLS = ("lxd", "incus")


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
    env = os.environ if environ is None else environ
    home = env.get("HOME") or os.path.expanduser("~")
    candidates = [
        ConfigDir("$APITX_CONF", own_config_dir(env), "apitx"),
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


@dataclass(frozen=True)
class RemoteSettings:
    """A remote as a config dir describes it, and what :meth:`API.factory` needs.

    ``addr`` is as written (``https://host:8443``, ``unix://``,
    ``unix:///path``); ``project`` is None when the config names none.
    """

    name: str
    config_dir: ConfigDir
    addr: str
    protocol: str = "lxd"
    auth_type: str = "tls"
    project: Optional[str] = None
    public: bool = False

    @property
    def client_cert(self) -> Optional[Tuple[str, str]]:
        """``(client.crt, client.key)`` of the remote's config dir, when both exist."""
        pair = tuple(os.path.join(self.config_dir.path, f) for f in ("client.crt", "client.key"))
        return (pair[0], pair[1]) if all(os.path.exists(p) for p in pair) else None

    @property
    def server_cert(self) -> Optional[str]:
        """``servercerts/<name>.crt``, when it exists."""
        path = os.path.join(self.config_dir.path, "servercerts", f"{self.name}.crt")
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

    Bad YAML raises :class:`EndpointError` naming the file and line.
    """
    import yaml  # here, not above: only remote users pay for importing it

    path = os.path.join(config_dir, "config.yml")
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise EndpointError(f"cannot read {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise EndpointError(f"{path}{line}: bad YAML ({problem}): fix or remove that "
                            "file") from exc
    if data is None:
        return {}
    if not isinstance(data, dict) or not isinstance(data.get("remotes", {}), dict):
        raise EndpointError(f"{path}: not an lxc/incus client config (expected a mapping "
                            "with 'remotes: {name: {addr: ...}}'): fix or remove that file")
    return data


def load_remotes(config_dir: ConfigDir) -> Dict[str, RemoteSettings]:
    """Every remote one config dir defines, by name."""
    found = {}
    path = os.path.join(config_dir.path, "config.yml")
    for name, entry in (read_config(config_dir.path).get("remotes") or {}).items():
        if not isinstance(entry, dict) or not isinstance(entry.get("addr"), str):
            raise EndpointError(f"{path}: remote {name!r} has no 'addr' string: fix or "
                                "remove it")
        default_protocol = "incus" if config_dir.flavour == "incus" else "lxd"
        found[str(name)] = RemoteSettings(
            name=str(name), config_dir=config_dir, addr=entry["addr"],
            protocol=str(entry.get("protocol") or default_protocol),
            auth_type=str(entry.get("auth_type") or "tls"),
            project=str(entry["project"]) if entry.get("project") else None,
            public=bool(entry.get("public", False)))
    return found


def list_remotes(environ: Optional[Mapping[str, str]] = None) -> List[RemoteSettings]:
    """Every remote reachable by name: the first dir defining a name wins."""
    winners: Dict[str, RemoteSettings] = {}
    for config_dir in config_dirs(environ):
        for name, settings in load_remotes(config_dir).items():
            winners.setdefault(name, settings)
    return list(winners.values())


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
        return RemoteSettings(name="local", config_dir=dirs[0], addr="unix://")
    searched = ", ".join(f"{d.path}/config.yml ({d.origin})" for d in dirs)
    raise EndpointError(f"no remote named {name!r}; searched {searched}. Add it with "
                        f"`apitx remote add {name} https://HOST:8443 --token TOKEN`")


def resolve_remote(text: Any, environ: Optional[Mapping[str, str]] = None
                   ) -> Optional[RemoteSettings]:
    """The remote ``text`` names when it is ``name:``, else None (a path or URL).

    >>> resolve_remote('/var/lib/lxd/unix.socket') is None
    True
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
    _write(os.path.join(config_dir, "servercerts", f"{name}.crt"), server_cert_pem)
    _write_config(config_dir, config)


def remove_remote(config_dir: str, name: str) -> None:
    """Remove a remote (and its pinned certificate) from ``config_dir``."""
    config = read_config(config_dir)
    remotes = config.get("remotes") or {}
    if name not in remotes:
        raise EndpointError(f"no remote named {name!r} in {config_dir}/config.yml: "
                            "`apitx remote list` shows where each remote lives")
    del remotes[name]
    _write_config(config_dir, config)
    try:
        os.unlink(os.path.join(config_dir, "servercerts", f"{name}.crt"))
    except FileNotFoundError:
        pass


def _write_config(config_dir: str, config: Dict[str, Any]) -> None:
    import yaml

    _write(os.path.join(config_dir, "config.yml"),
           yaml.safe_dump(config, default_flow_style=False, sort_keys=False).encode())


def check_name(name: str) -> None:
    """Refuse a remote name ``lxc`` could not use (``:``, ``/``, spaces…)."""
    if not _REMOTE.fullmatch(f"{name}:"):
        raise EndpointError(f"remote name {name!r} is not usable: use letters, digits, "
                            "'-', '_', '.', '+', starting with a letter or digit")


def _write(path: str, data: bytes) -> None:
    """Write a file whole or not at all: a crash never leaves half a config."""
    with atomic_write(path) as out:
        out.write(data)
