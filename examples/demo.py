"""apitx demo: an instance's whole life against the local LXD.

Creates an instance from the busybox image scripts/lxd-sandbox imports,
starts it, runs commands in it (streams over websockets, stdin included),
stops it and deletes it. Run it with DEBUG=1 to see every HTTP transaction
and websocket message on stderr (scripts/demo does).

    python3 examples/demo.py [instance-name]
"""

import sys

from apitx import API, APINotFoundException, ExecError

IMAGE = "apitx-busybox"


def main(name: str) -> int:
    api = API.factory("lxd")  # the local LXD: $LXD_SOCKET, $LXD_DIR, snap, Debian
    print(f"LXD {api.server.version} at {api.endpoint.display}")

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

        ran = api.exec(name, ["/bin/sh", "-c", "echo hello from $(hostname); uname -s; "
                              "tr a-z A-Z; exit 3"], stdin=b"stdin goes in too\n", timeout=30)
        print(f"exec returned {ran.return_code}, stdout: {ran.stdout.decode().strip()!r}")

        missing = api.exec(name, ["/no/such/command"], timeout=30)
        print(f"a command that does not exist returns {missing.return_code}, as in a shell")
        try:
            missing.check()
        except ExecError as exc:
            print(f"check() raises: {exc}")

        api.put(f"instances/{name}/state", json={"action": "stop", "force": True}).wait(60)
        print("stopped")
    finally:
        api.delete(f"instances/{name}", validate=False).wait(timeout=60)
        print(f"deleted {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "apitx-demo"))
