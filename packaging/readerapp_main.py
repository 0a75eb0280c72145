"""Entry point of the frozen program (PyInstaller): the same ``readerapp`` command as from source."""

import multiprocessing
import sys

from readerapp.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # worker processes of a frozen program re-enter here
    sys.exit(main())
