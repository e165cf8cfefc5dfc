"""``python -m apitx``: the ``apitx`` command (see :mod:`apitx.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
