"""``python -m gnnns.cli``: the command line, as ``python -m gnnns``."""

import sys

from gnnns.cli import main

sys.exit(main())
