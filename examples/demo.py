"""apitx demo: an instance's whole life against the local LXD.

Creates an instance from the busybox image scripts/lxd-sandbox imports,
starts it, runs a command in it, stops it and deletes it. Run it with
DEBUG=1 to see every HTTP transaction on stderr (scripts/demo does).

    python3 examples/demo.py [instance-name]
"""

import sys

from apitx import API, APIException, APINotFoundException

IMAGE = "apitx-busybox"


def main(name: str) -> int:
    api = API.factory()  # the local LXD: $LXD_SOCKET, $LXD_DIR, snap, Debian
    print(f"LXD {api.get('').metadata['environment']['server_version']} at {api.endpoint.display}")

    try:
        api.get(f"instances/{name}")
        print(f"{name} exists already: pick another name")
        return 1
    except APINotFoundException:
        pass

    api.post("instances", json={"name": name, "source": {"type": "image", "alias": IMAGE}}
             ).wait(timeout=120)
    print(f"created {name}")
    try:
        api.put(f"instances/{name}/state", json={"action": "start"}).wait(timeout=60)
        print(f"started: {api.get(f'instances/{name}').metadata['status']}")

        ran = api.post(f"instances/{name}/exec", json={
            "command": ["/bin/sh", "-c", "echo hello from $(hostname); uname -s"],
            "record-output": True, "wait-for-websocket": False, "interactive": False,
        }).wait(timeout=30)
        output = ran.metadata["metadata"]
        stdout = api.get(output["output"]["1"]).response.content.decode()
        print(f"exec returned {output['return']}, stdout: {stdout.strip()!r}")

        try:
            api.post(f"instances/{name}/exec", json={
                "command": ["/no/such/command"], "record-output": True,
                "wait-for-websocket": False, "interactive": False}).wait(timeout=30)
        except APIException as exc:
            print(f"a failing exec raises, with LXD's message: {exc.error}")

        api.put(f"instances/{name}/state", json={"action": "stop", "force": True}).wait(60)
        print("stopped")
    finally:
        api.delete(f"instances/{name}", validate=False).wait(timeout=60)
        print(f"deleted {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "apitx-demo"))
