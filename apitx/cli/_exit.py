"""The ``apitx`` command's exit codes, and the failures of its own that choose them.

One table for the request command and its subcommands (``apitx remote``,
``apitx events``, ``apitx copy``...), so a failure of the same kind exits
with the same code whichever command met it. ``apitx exec`` is the
exception: its status is the command's, so every failure of apitx's own
exits :data:`EXIT_EXEC_OWN` (as ssh does). Exit codes are the command's
concern, not the library's: this table maps the library's public
exceptions, and lives here.

Example: a command ends with ``sys.exit(exit_code(exc))``:

>>> from apitx import APITimeoutError
>>> exit_code(APITimeoutError('GET unix:/var/lib/lxd/unix.socket /1.0: no answer in 5 s'))
4
"""

from __future__ import annotations

from .. import (APIConnectionError, APIException, APITimeoutError, EndpointError,
                LocalFileError, MigrationError, RequestError, SettingsError)

EXIT_OK = 0
EXIT_API_ERROR = 1
EXIT_USAGE = 2
EXIT_CONNECT = 3
EXIT_TIMEOUT = 4
EXIT_OUTPUT = 5
EXIT_INTERNAL = 70  # EX_SOFTWARE of sysexits.h: a bug of apitx
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141
#: ``apitx exec``'s code for any failure of apitx itself (ssh's convention):
#: no code of the table above, which could all be the command's own.
EXIT_EXEC_OWN = 255

#: The table ``--help`` shows (the request command's, and events' and remote's).
TABLE = """\
exit codes:
  0    ok
  1    the API answered an error, or the operation failed
  2    usage error or bad input (bad JSON, unreadable file, closed stdout, ...):
       nothing was sent
  3    cannot connect to the server
  4    timeout (--wait --timeout, or no answer in time)
  5    the result could not be written (disk full, ...): the request was sent
  70   internal error of apitx (-v shows the traceback)
  130  interrupted (Ctrl-C); a --wait names the operation still running
  141  stdout was closed early (apitx ... | head), as for SIGPIPE
"""


class UsageError(Exception):
    """Bad input from the command line, found before anything is sent (exit 2)."""


class OutputError(Exception):
    """The result could not be written (disk full, I/O error) after it was asked for (exit 5)."""


class Interrupted(Exception):
    """Ctrl-C during --wait: the message says what became of the operation (exit 130)."""


#: The exit code of each failure, most specific class first: the command's
#: own, then the library's (1 for any other APITXError).
EXIT_CODES = (
    (UsageError, EXIT_USAGE),
    (OutputError, EXIT_OUTPUT),
    (Interrupted, EXIT_INTERRUPTED),
    (SettingsError, EXIT_USAGE),
    (EndpointError, EXIT_USAGE),
    (RequestError, EXIT_USAGE),
    (LocalFileError, EXIT_OUTPUT),
    (APITimeoutError, EXIT_TIMEOUT),  # OperationTimeout too
    (APIConnectionError, EXIT_CONNECT),
    (APIException, EXIT_API_ERROR),
)


#: The causes a :class:`~apitx.MigrationError` exits with, rather than 1: a
#: copy that could not reach one of its servers exits as any command that
#: cannot connect does (its message names the side).
_MIGRATION_CAUSES = (APIConnectionError, APITimeoutError)


def exit_code(exc: BaseException) -> int:
    """The exit code for a failure (1 for an APITXError of no other row).

    >>> exit_code(UsageError('-p x: write it as key=value'))
    2
    """
    if isinstance(exc, MigrationError) and isinstance(exc.__cause__, _MIGRATION_CAUSES):
        exc = exc.__cause__
    return next((code for kind, code in EXIT_CODES if isinstance(exc, kind)), EXIT_API_ERROR)
