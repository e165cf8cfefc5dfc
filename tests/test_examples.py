"""The programs in examples/ run against the live LXD and print what they promise.

examples/demo.py is run by scripts/demo (tests/test_demo.py); the others are
run here as a user would, in a subprocess with this checkout's interpreter,
each on an instance name of its own that is deleted whatever happened.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

import apitx
from sandbox import SERVER_BY_NAME, live_server, remove_instance

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.live
def test_the_async_session_runs_its_whole_story_from_one_event_loop() -> None:
    server = live_server(SERVER_BY_NAME["lxd"])
    name = f"apitx-{uuid.uuid4().hex[:10]}"
    api = apitx.API.factory(server.socket, trace=False)
    try:
        done = subprocess.run([sys.executable, str(ROOT / "examples" / "async_session.py"), name],
                              capture_output=True, text=True, timeout=300,
                              env={"PATH": "/usr/bin:/bin", "DEBUG": "1",
                                   "LXD_SOCKET": server.socket})
        assert done.returncode == 0, done.stderr[-3000:]
        lines = done.stdout.splitlines()
        for line in ("event: instance-created", "event: instance-started",
                     "stderr: b'to stderr\\n'",
                     "exec returned 3, stdout file holds b'STDIN GOES IN\\n'",
                     "3 in parallel returned [0, 1, 2]", "event: instance-stopped"):
            assert line in lines, done.stdout
        assert lines[-1] == "event: instance-deleted"  # the watcher saw the end, then stopped
        # DEBUG=1: apitx's trace of the transactions and websocket frames on stderr.
        assert f"unix:{server.socket} POST /1.0/instances " in done.stderr
        assert f"PUT /1.0/instances/{name}/state " in done.stderr
        assert "#ws1 < " in done.stderr
        assert api.get(f"instances/{name}/state", validate=False).status_code == 404
    finally:
        remove_instance(api, name)
        api.close()
