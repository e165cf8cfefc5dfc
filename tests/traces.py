"""Reading apitx's trace records in tests: which requests were sent."""

import re
from typing import List

#: A trace's first line names the request, e.g.
#: ``#3 unix:/var/lib/lxd/unix.socket PATCH /1.0/profiles/p 2.1 ms``.
_REQUEST = re.compile(r"\b(GET|POST|PUT|PATCH|DELETE|HEAD) (/\S*)")

WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def traced_requests(caplog) -> List[str]:
    """``'METHOD /path'`` for every transaction the ``apitx`` logger traced."""
    found = []
    for record in caplog.records:
        if record.name == "apitx":
            match = _REQUEST.search(record.getMessage().splitlines()[0])
            if match:
                found.append(f"{match.group(1)} {match.group(2)}")
    return found


def traced_writes(caplog) -> List[str]:
    return [line for line in traced_requests(caplog) if line.split()[0] in WRITES]
