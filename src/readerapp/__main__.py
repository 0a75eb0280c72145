"""``python -m readerapp`` is the ``readerapp`` command."""

import sys

from .cli import main

sys.exit(main())
