#!/usr/bin/env python3
"""Websocket messages: what a huge frame and a fragmented message cost a client.

Issue 16's third item. Before, a 1 GiB frame from a hostile server was a
MemoryError at ~1 GB RSS, and a fragmented message was reassembled at
quadratic cost (websocket-client joins fragments with ``bytes +=``: a 200 MiB
message took 85 s and 428 MB). apitx now refuses a frame that would take a
message past ``max_answer_bytes`` from its header, and joins fragments once.

What is measured, each case in a child process whose own peak RSS
(``os.wait4``) and wall time (start-up included, ~0.2 s) are reported:

- ``1 GiB frame``: the server sends the header of a 1 GiB binary frame and a
  few bytes; apitx must raise ResponseTooLarge at once, its RSS flat;
- ``N MiB in 64 KiB fragments``, received whole (``max_answer_bytes`` raised
  to fit) by apitx, and by websocket-client's own ``WebSocket.recv()`` over
  the same kind of connection: the reassembly apitx used before.

The server is tests/hostile_ws.py on a Unix socket, in this process (its
fragments are one 64 KiB object repeated, so it holds little).

    python3 bench/ws_messages.py [--sizes 16,64]
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from cli_memory import peak_rss  # noqa: E402
from hostile_ws import BINARY, CONTINUATION, frame, header, running_ws_server  # noqa: E402

PIECE = 64 * 1024
MIB = 1 << 20

#: argv[1] the socket, argv[2] the message size.
CHILD = {
    "apitx": "import sys, apitx; size = int(sys.argv[2]); "
             "api = apitx.API.factory(sys.argv[1], max_answer_bytes=max(size, 1), "
             "timeout=(10, 600)); ws = api.websocket('events')\n"
             "try:\n    message = ws.recv()\nexcept apitx.ResponseTooLarge:\n    message = b''\n"
             "assert len(message) == size, len(message)",
    "websocket-client": "import socket, sys, websocket; s = socket.socket(socket.AF_UNIX); "
                        "s.connect(sys.argv[1]); ws = websocket.WebSocket(); "
                        "ws.connect('ws://localhost/1.0/events', socket=s, suppress_origin=True,"
                        " timeout=600); assert len(ws.recv()) == int(sys.argv[2])",
}


def fragments(size: int) -> List[bytes]:
    """One binary message of ``size`` bytes in 64 KiB fragments."""
    piece = b"x" * PIECE
    count = size // PIECE
    return [frame(BINARY, piece, fin=False)] + \
        [frame(CONTINUATION, piece, fin=False)] * (count - 2) + [frame(CONTINUATION, piece)]


def measure(messages: List[bytes], client: str, size: int) -> Tuple[float, float]:
    with running_ws_server(messages, then_drop=False) as server:
        return peak_rss([sys.executable, "-c", CHILD[client], server.server_address, str(size)],
                        f"{client} receiving {size} bytes")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--sizes", default="16,64", help="fragmented message sizes, MiB")
    args = parser.parse_args()
    floor, _ = peak_rss([sys.executable, "-c", "import apitx, websocket"], "the floor")
    print(f"websocket messages (Python {sys.version.split()[0]}, {os.cpu_count()} CPUs); "
          f"a child that only imports apitx peaks at {floor:.1f} MB")
    print(f"   {'case':<34}{'client':<18}{'peak RSS':>10}{'time':>9}")
    rss, seconds = measure([header(BINARY, 1 << 30) + b"x" * 100], "apitx", 0)
    print(f"   {'1 GiB frame (refused)':<34}{'apitx':<18}{rss:>7.1f} MB{seconds:>8.2f}s")
    for mib in (int(size) for size in args.sizes.split(",")):
        for client in ("apitx", "websocket-client"):
            rss, seconds = measure(fragments(mib * MIB), client, mib * MIB)
            print(f"   {f'{mib} MiB in 64 KiB fragments':<34}{client:<18}{rss:>7.1f} MB"
                  f"{seconds:>8.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
