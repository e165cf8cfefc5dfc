"""``python -m apitx``: the ``apitx`` command (see :mod:`apitx.cli`)."""

import sys

from .cli import run

if __name__ == "__main__":
    sys.exit(run())
