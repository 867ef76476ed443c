"""``python -m flight`` is ``fsw``."""

import sys

from flight.cli import main

sys.exit(main())
