"""Progress of a transfer between servers or to a file, for ``progress=``.

A copy, move, export or import reports :class:`TransferProgress` values: the
servers' own figures where they give them, apitx's counts where apitx carries
the bytes itself (a relay, a download, an upload).

The servers' figures are in their operations' ``metadata`` (LXD 5.0.2 and
Incus 6.0.4, measured here), one ``<stage>_progress`` text per stage, kept
there after the stage ends (so the text that changed is the current one),
sometimes with a structured ``progress`` beside it:

- ``fs_progress: "c1/snap0: 32.21MB (32.21MB/s)"``: rsync's bytes so far, in
  the server's units (powers of 1000, as LXD's ``GetByteSizeString``);
- ``create_instance_from_image_unpack_progress: "Unpack: 42% (109.53MB/s)"``
  with ``progress: {stage, percent, speed}``: a target unpacking the image
  the source was made from, before the differences arrive;
- ``create_backup_progress``, ``download_progress``: the same, for backups
  and images.

Example: a server's operation metadata, read twice; the second time no
progress text changed, so there is no update:

>>> import time
>>> reader = ProgressReader(started=time.monotonic())
>>> reader.read('target', {'fs_progress': 'c1: 32.21MB (32.21MB/s)'})
TransferProgress(side='target', stage='fs', text='c1: 32.21MB (32.21MB/s)', percent=None, bytes=32210000, total=None, waited=...)
>>> reader.read('target', {'fs_progress': 'c1: 32.21MB (32.21MB/s)'}) is None
True
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional

#: A percentage in a server's progress text: ``Unpack: 42% (109.53MB/s)``.
_PERCENT = re.compile(r"(\d{1,3})%")
#: A server's size figure: ``32.21MB``, ``999B``, ``1.5GB`` (powers of 1000).
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kKMGTPE]?)i?B\b")
_POWERS = {"": 0, "k": 1, "K": 1, "M": 2, "G": 3, "T": 4, "P": 5, "E": 6}


@dataclass(frozen=True)
class TransferProgress:
    """One update of a transfer.

    ``side`` is who reports it: ``'source'`` or ``'target'`` (that server's
    operation) or ``'apitx'`` (bytes apitx carried itself); ``stage`` what is
    being done (the server's name for it, such as ``'fs'`` or
    ``'create_instance_from_image_unpack'``, or apitx's: ``'relay'``,
    ``'download'``, ``'upload'``); ``text`` the server's own words, or
    apitx's; ``percent`` when known; ``bytes`` so far and ``total`` when
    known; ``waited`` the seconds since the transfer started.

    >>> TransferProgress('apitx', 'relay', '12.0 MB relayed', None, 12_000_000, None, 0.8).bytes
    12000000
    """

    side: str
    stage: str
    text: str
    percent: Optional[int]
    bytes: Optional[int]
    total: Optional[int]
    waited: float


#: What ``progress=`` is called with.
ProgressCallback = Callable[[TransferProgress], Any]


def parse_size(text: str) -> Optional[int]:
    """The first size in a server's progress text, in bytes (powers of 1000).

    >>> parse_size('c1/snap0: 32.21MB (32.21MB/s)')
    32210000
    """
    match = _SIZE.search(text)
    if match is None:
        return None
    return int(float(match.group(1)) * 1000 ** _POWERS[match.group(2)])


def readable_size(size: int) -> str:
    """A byte count as the servers write them (powers of 1000).

    >>> readable_size(32_210_000)
    '32.21MB'
    """
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if value < 1000:
            return f"{int(value)}B" if unit == "B" else f"{value:.2f}{unit}"
        value /= 1000
    return f"{value:.2f}EB"


class ProgressReader:
    """Turns successive operation metadata into progress updates, one per change.

    Remembers each side's last texts, so an update is made only for a
    ``*_progress`` text that changed (the stale ones of finished stages stay
    in the metadata), and :attr:`counted` how many bytes the reports say got
    through so far (for diagnosing a failure).
    """

    def __init__(self, started: float) -> None:
        self.started = started
        self._seen: Dict[str, Dict[str, Any]] = {}
        # rsync's count for each volume and snapshot sent ("c1/snap0: 3MB"),
        # and the most bytes apitx counted itself.
        self._streams: Dict[str, int] = {}
        self._own = 0

    @property
    def counted(self) -> int:
        """Bytes the reports say got through so far: the servers' rsync
        counts of every volume and snapshot, or apitx's own, whichever is more."""
        return max(sum(self._streams.values()), self._own)

    def waited(self) -> float:
        return time.monotonic() - self.started

    def read(self, side: str, metadata: Any) -> Optional[TransferProgress]:
        """The update a side's operation metadata makes, or None when no
        progress text changed since the last call for that side."""
        if not isinstance(metadata, dict):
            return None
        before = self._seen.setdefault(side, {})
        changed = [key for key, value in metadata.items()
                   if key.endswith("_progress") and isinstance(value, str)
                   and before.get(key) != value]
        self._seen[side] = dict(metadata)
        if not changed:
            return None
        key = "fs_progress" if "fs_progress" in changed else changed[-1]
        text = str(metadata[key])
        stage = key[:-len("_progress")]
        structured = metadata.get("progress")
        percent = None
        if isinstance(structured, dict) and structured.get("stage") == stage:
            try:
                percent = int(str(structured.get("percent")))
            except (TypeError, ValueError):
                percent = None
        shown = _PERCENT.search(text)
        if percent is None and shown:
            percent = int(shown.group(1))
        size = None
        if stage == "fs":
            stream, _, figures = text.rpartition(":")
            size = parse_size(figures)
            if size is not None:
                self._streams[stream] = max(size, self._streams.get(stream, 0))
        return TransferProgress(side=side, stage=stage, text=text, percent=percent, bytes=size,
                                total=None, waited=self.waited())

    def made(self, stage: str, text: str, *, size: Optional[int] = None,
             total: Optional[int] = None) -> TransferProgress:
        """An update of apitx's own (bytes it carried, read or sent)."""
        if size is not None:
            self._own = max(self._own, size)
        percent = int(size * 100 / total) if size is not None and total else None
        return TransferProgress(side="apitx", stage=stage, text=text, percent=percent,
                                bytes=size, total=total, waited=self.waited())

