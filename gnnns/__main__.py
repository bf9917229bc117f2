"""``python -m gnnns`` (and ``torchrun -m gnnns``): the command line."""

import sys

from gnnns.cli import main

sys.exit(main())
