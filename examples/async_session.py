"""apitx's async client: an instance's life from one event loop, against the local LXD.

Creates an instance (the name given, else a unique one) from the busybox image scripts/lxd-sandbox
imports and starts it while a task prints its lifecycle events; runs a command
with streams (stdin in, stdout to a file, stderr to a callable); runs three
commands at once and waits on all three; deletes the instance whatever
happened. Run it with DEBUG=1 to see every transaction on stderr.

    DEBUG=1 python3 examples/async_session.py [instance-name]
"""

import asyncio
import io
import sys
import uuid

from apitx import AsyncAPI, AsyncEventStream

IMAGE = "apitx-busybox"
QUIET = {"record-output": False, "wait-for-websocket": False, "interactive": False}


async def watch(stream: AsyncEventStream, name: str) -> None:
    """Print this instance's lifecycle events until it is deleted."""
    async for event in stream:
        if event.metadata["source"].endswith(f"/instances/{name}"):
            print(f"event: {event.metadata['action']}")
            if event.metadata["action"] == "instance-deleted":
                return


async def main(name: str) -> None:
    async with AsyncAPI.factory() as api:  # the local LXD
        stream = await api.events(types=["lifecycle"])  # listening before anything happens
        watcher = asyncio.create_task(watch(stream, name))
        try:
            created = await api.post("instances", json={
                "name": name, "source": {"type": "image", "alias": IMAGE}})
            await created.wait(timeout=120)
            await (await api.put(f"instances/{name}/state", json={"action": "start"})).wait(60)
            out = io.BytesIO()
            ran = await api.exec(name, ["sh", "-c", "tr a-z A-Z; echo to stderr >&2; exit 3"],
                                 stdin=b"stdin goes in\n", stdout=out,
                                 stderr=lambda piece: print(f"stderr: {piece!r}"))
            print(f"exec returned {ran.return_code}, stdout file holds {out.getvalue()!r}")
            started = await asyncio.gather(*(api.post(f"instances/{name}/exec", json={
                "command": ["sh", "-c", f"sleep 1; exit {n}"], **QUIET}) for n in (0, 1, 2)))
            finished = await api.wait_all(started, timeout=60)
            print(f"3 in parallel returned {[r.metadata['metadata']['return'] for r in finished]}")
        finally:
            await (await api.put(f"instances/{name}/state",
                                 json={"action": "stop", "force": True})).wait(60)
            await (await api.delete(f"instances/{name}")).wait(60)
            await asyncio.wait_for(watcher, 10)  # until it printed instance-deleted
            await stream.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else f"apitx-{uuid.uuid4().hex[:8]}"))
