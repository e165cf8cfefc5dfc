"""An image copied between two servers, by fingerprint or alias, aliases kept.

Three ways, as for instances (:mod:`apitx._migration`), with the image API's
own requests (LXD's Go client's ``CopyImage`` sends the same):

- ``pull``: the target downloads it from the source (``POST /1.0/images``
  with ``source: {type: image, mode: pull, server, protocol: lxd,
  certificate, fingerprint, secret}``); a private image needs a one-time
  secret from the source (``POST /1.0/images/<fp>/secret``). Incus takes
  ``protocol: lxd`` from either family (measured);
- ``push``: the target hands out a one-time secret (``source: {mode: push,
  fingerprint}``) and the source uploads to it (``POST
  /1.0/images/<fp>/export`` with ``target, certificate, secret``); not across
  LXD and Incus (:mod:`apitx._compat`);
- ``relay``: apitx streams the source's export (``GET
  /1.0/images/<fp>/export``) into the target's upload (``POST /1.0/images``)
  with the same ``Content-Type`` (a unified tarball, or a split image's
  ``multipart/form-data`` as it is), never holding more than one piece.

Aliases are made afterwards on the target, whichever way (``POST
/1.0/images/aliases``), and checked first: an alias the target already gives
another image stops the copy before anything is sent. An image the target
already holds is not sent again. A copy that fails after the image arrived is
removed, so no half-done image (without its aliases) stays behind.

>>> from apitx import API
>>> from apitx.migrate import copy_image
>>> lxd, incus = API.factory(), API.factory('/var/lib/incus/unix.socket')
>>> image = copy_image(lxd, 'apitx-busybox', incus, mode='relay')  # Incus has it: not sent
>>> image.metadata['aliases']
[{'name': 'apitx-busybox', 'description': ''}]
>>> copy_image(lxd, 'no-such-image', incus)
Traceback (most recent call last):
  ...
apitx.MigrationError: the source (lxd 5.0.2 (API 1.0) at unix:/var/lib/lxd/unix.socket) has no image 'no-such-image' (neither an alias nor a fingerprint); nothing was sent
"""

from __future__ import annotations

import time
from typing import Any, Dict, List, Optional
from urllib.parse import quote

from ._client import Client
from ._compat import refuse
from ._exceptions import APINotFoundException, APITXError
from ._migration import (Peer, SideFailure, check_mode, check_reachable, counted, failed_on,
                         on_side, remove_created, side_failed, wait_reporting)
from ._result import APIResult
from ._transfer import ProgressCallback, ProgressReader

#: Pieces of a relayed image read (and held) at once.
_CHUNK = 1 << 16


def copy_image(source: Client, image: str, target: Client, *, aliases: bool = True,
               mode: str = "pull", progress: Optional[ProgressCallback] = None,
               timeout: Optional[float] = None) -> APIResult:
    """Copy ``image`` (an alias, or a fingerprint or its prefix) from
    ``source`` to ``target`` with its aliases (``aliases=False``: none);
    return the target's ``GET /1.0/images/<fingerprint>``.

    >>> from apitx import API
    >>> from apitx.migrate import copy_image
    >>> lxd, incus = API.factory(), API.factory('/var/lib/incus/unix.socket')
    >>> fingerprint = lxd.get('images/aliases/apitx-busybox').metadata['target']
    >>> copy_image(lxd, fingerprint[:12], incus).metadata['fingerprint'] == fingerprint
    True
    """
    return _ImageCopy(source, image, target, aliases, mode, progress, timeout).run()


class _ImageCopy:
    def __init__(self, source: Client, image: str, target: Client, aliases: bool, mode: str,
                 progress: Optional[ProgressCallback], timeout: Optional[float]) -> None:
        check_mode(mode)
        self.source, self.target = Peer.read(source, "source"), Peer.read(target, "target")
        self.mode, self.progress, self.timeout = mode, progress, timeout
        self.reader = ProgressReader(time.monotonic())
        self.image = self._find(image)
        self.fingerprint = str(self.image.get("fingerprint") or "")
        self.described = f"image {image}" + (
            f" ({self.fingerprint[:12]})" if not self.fingerprint.startswith(image) else "")
        self.aliases: List[Dict[str, Any]] = list(self.image.get("aliases") or ()) \
            if aliases else []
        self.url = f"images/{self.fingerprint}"

    def run(self) -> APIResult:
        refuse("image", self.described, self.source.server.name, self.target.server.name,
               self.mode)
        check_reachable(self.mode, self.source, self.target)
        had_it = self._target_has(self.url)
        wanted = self._aliases_to_make()
        if not had_it:
            self._transfer()
        try:
            for alias in wanted:
                self.target.client.request("POST", "images/aliases", json={
                    "name": alias["name"], "description": alias.get("description") or "",
                    "target": self.fingerprint})
        except APITXError as exc:
            left = None if had_it else remove_created(self.target.client, self.url,
                                                      self.described)
            raise failed_on("target", f"{self.described} reached {self.target}, but making "
                            f"its aliases failed: {exc}; " + (
                                f"left on the target: {left}" if left else
                                "the image was there before, and is kept" if had_it else
                                "the copy was removed"), str(exc)) from exc
        try:
            return self.target.client.request("GET", self.url)
        except APITXError as exc:
            raise side_failed("target", self.target.client, exc, "reading the copy") from exc

    # -- the checks -----------------------------------------------------------------

    def _find(self, image: str) -> Dict[str, Any]:
        """The source's image named by an alias, else by a fingerprint (prefix)."""
        client = self.source.client
        try:
            alias = client.request("GET", f"images/aliases/{quote(image, safe='')}",
                                   validate=False)
            fingerprint = (alias.metadata or {}).get("target") if alias.ok else image
            found = client.request("GET", f"images/{quote(str(fingerprint), safe='')}").metadata
        except APINotFoundException as exc:
            raise failed_on("source", f"{self.source} has no image {image!r} (neither an alias "
                            "nor a fingerprint); nothing was sent", exc.error) from exc
        except APITXError as exc:
            raise side_failed("source", client, exc, f"reading image {image}") from exc
        return found if isinstance(found, dict) else {}

    def _target_has(self, url: str) -> bool:
        try:
            return self.target.client.request("GET", url, validate=False).status_code != 404
        except APITXError as exc:
            raise side_failed("target", self.target.client, exc, f"looking for {url}") from exc

    def _aliases_to_make(self) -> List[Dict[str, Any]]:
        """The aliases the target lacks; an alias it gives another image stops us."""
        wanted = []
        for alias in self.aliases:
            name = str(alias.get("name"))
            try:
                there = self.target.client.request(
                    "GET", f"images/aliases/{quote(name, safe='')}", validate=False)
            except APITXError as exc:
                raise side_failed("target", self.target.client, exc,
                                  f"looking for alias {name}") from exc
            points = (there.metadata or {}).get("target") if there.ok else None
            if points is None:
                wanted.append(alias)
            elif points != self.fingerprint:
                raise failed_on("target", f"{self.target} already has alias {name!r}, for "
                                f"image {str(points)[:12]}: delete or rename it there first, "
                                "or copy with aliases=False; nothing was sent",
                                f"alias {name} exists")
        return wanted

    # -- the modes --------------------------------------------------------------------

    def _transfer(self) -> None:
        try:
            if self.mode == "pull":
                self._pull()
            elif self.mode == "push":
                self._push()
            else:
                self._relay()
        except SideFailure as failure:
            left = remove_created(self.target.client, self.url, self.described)
            raise failed_on(failure.role,
                            f"{self.mode} {self.described} from "
                            f"{self.source.client.endpoint.display} to "
                            f"{self.target.client.endpoint.display} failed on the "
                            f"{failure.role}: {failure.exc}" + (
                                f"; left on the target: {left}" if left else
                                "; nothing is left on the target"),
                            str(failure.exc)) from failure.exc

    def _pull(self) -> None:
        source: Dict[str, Any] = {
            "type": "image", "mode": "pull", "server": self.source.address, "protocol": "lxd",
            "certificate": self.source.certificate, "fingerprint": self.fingerprint}
        secret_op = None
        if not self.image.get("public"):
            secret_op = on_side("source", lambda: self.source.client.request(
                "POST", f"{self.url}/secret"))
            source["secret"] = str(((secret_op.metadata or {}).get("metadata") or {})
                                   .get("secret") or "")
        try:
            on_side("target", lambda: self._wait(self.target.client.request("POST", "images", json={
                "source": source, "public": bool(self.image.get("public")),
                "auto_update": False})))
        finally:
            if secret_op is not None:
                _cancel(self.source.client, secret_op)

    def _push(self) -> None:
        token = on_side("target", lambda: self.target.client.request("POST", "images", json={
            "source": {"fingerprint": self.fingerprint, "mode": "push"},
            "public": bool(self.image.get("public")),
            "properties": self.image.get("properties") or {}}))
        secret = str(((token.metadata or {}).get("metadata") or {}).get("secret") or "")
        try:
            on_side("source", lambda: self._wait(self.source.client.request(
                "POST", f"{self.url}/export", json={
                    "target": self.target.address, "certificate": self.target.certificate,
                    "secret": secret, "aliases": [], "profiles": []})))
        finally:
            _cancel(self.target.client, token)

    def _relay(self) -> None:
        export = on_side("source", lambda: self.source.client.request(
            "GET", f"{self.url}/export", stream=True))
        total = self.image.get("size")
        family = self.target.server.header_prefix
        headers = {"Content-Type": export.response.headers.get("Content-Type",
                                                               "application/octet-stream"),
                   f"{family}public": "true" if self.image.get("public") else "false"}
        upload = on_side("target", lambda: self.target.client.request(
            "POST", "images", headers=headers, data=counted(
                export.iter_content(_CHUNK), "source", self.reader, self.progress, "relay",
                "relayed", total if isinstance(total, int) else None)))
        done = on_side("target", lambda: self._wait(upload))
        made = ((done.metadata or {}).get("metadata") or {}).get("fingerprint")
        if made and made != self.fingerprint:
            remove_created(self.target.client, f"images/{made}", f"image {made[:12]}")
            raise failed_on("target", f"the target made image {made[:12]} of {self.described}"
                            f" ({self.fingerprint[:12]}): the bytes differ; it was removed",
                            f"fingerprint {made}")

    def _wait(self, started: APIResult) -> APIResult:
        return wait_reporting(started, self.reader, "target", self.progress, self.timeout)


def _cancel(client: Client, started: APIResult) -> None:
    """Cancel a one-time secret's operation once it is used or useless."""
    operation = started.operation
    if operation:
        try:
            client.request("DELETE", operation, validate=False)
        except APITXError:
            pass  # gone already: the secret is spent either way
