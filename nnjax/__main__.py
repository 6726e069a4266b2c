"""``python -m nnjax``: the same as the ``nnjax`` command."""

import sys

from nnjax.cli import main

if __name__ == "__main__":
    sys.exit(main())
