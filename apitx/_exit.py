"""The ``apitx`` command's exit codes, one table for every subcommand.

Shared by the request command (:mod:`apitx._cli`) and its subcommands
(``apitx remote``, ``apitx exec``, ``apitx events``), so a failure of the
same kind exits with the same code whichever command met it.

Example::

    sys.exit(exit_code(exc))      # 4 for any APITimeoutError
"""

from __future__ import annotations

from ._exceptions import (APIConnectionError, APIException, APITimeoutError, EndpointError,
                          RequestError, SettingsError)

EXIT_OK = 0
EXIT_API_ERROR = 1
EXIT_USAGE = 2
EXIT_CONNECT = 3
EXIT_TIMEOUT = 4
EXIT_OUTPUT = 5
EXIT_INTERNAL = 70  # EX_SOFTWARE of sysexits.h: a bug of apitx
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141

#: The exit code of each failure of the library, most specific class first.
LIBRARY_EXIT_CODES = (
    (SettingsError, EXIT_USAGE),
    (EndpointError, EXIT_USAGE),
    (RequestError, EXIT_USAGE),
    (APITimeoutError, EXIT_TIMEOUT),  # OperationTimeout too
    (APIConnectionError, EXIT_CONNECT),
    (APIException, EXIT_API_ERROR),
)


def exit_code(exc: BaseException) -> int:
    """The exit code for a failure of the library (1 for any other APITXError)."""
    return next((code for kind, code in LIBRARY_EXIT_CODES if isinstance(exc, kind)),
                EXIT_API_ERROR)
