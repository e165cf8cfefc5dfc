"""``python -m apitx``: the ``apitx`` command (see :mod:`apitx._cli`)."""

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main())
