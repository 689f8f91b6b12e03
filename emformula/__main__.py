"""``python -m emformula``: the command line, as the ``emformula`` script."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
