"""The ``readerapp`` command: one entry point, subcommands registered by ``readerapp.commands``.

Errors that are the input's fault (:class:`ReaderAppError`) print one short message on stderr and
exit 2; anything else is a bug: exit 1 with a one-line hint, the traceback only under ``--debug``.
With no subcommand the workstation window opens.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from . import __version__
from .errors import ReaderAppError

#: Modules under ``readerapp.commands`` that each define ``register(subparsers)``; a missing one
#: (an optional part not installed) is skipped.
COMMAND_MODULES = ("core", "view", "study", "pacs", "server")

EXIT_OK, EXIT_BUG, EXIT_BAD_INPUT = 0, 1, 2


def _quiet_pydicom(record: logging.LogRecord) -> bool:
    return not (record.name.startswith("pydicom") and record.levelno < logging.ERROR)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="readerapp",
        description="ReaderApp: blinded chest CT reads, densitometry and study workflow.",
    )
    parser.add_argument("--version", action="version", version=f"readerapp {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f".commands.{name}", __package__)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.endswith(f"commands.{name}"):
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    import multiprocessing

    multiprocessing.freeze_support()  # the loader's worker processes in a frozen (installed) build
    parser = build_parser()
    argv_list = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv_list)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not args.debug:
        # pydicom logs every oddity it tolerates (and resets its logger's level on import); the
        # loader reports what matters as warnings in the result, so drop pydicom's chatter here.
        for handler in logging.getLogger().handlers:
            handler.addFilter(_quiet_pydicom)
    if args.command is None:
        choices = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
        if choices and "view" in choices:
            args = parser.parse_args([*argv_list, "view"])
        else:
            parser.print_help()
            return EXIT_OK
    try:
        return int(args.func(args) or 0)
    except ReaderAppError as exc:
        print(f"readerapp: error: {exc}", file=sys.stderr)
        if args.debug:
            raise
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("readerapp: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        print(
            f"readerapp: internal error ({exc.__class__.__name__}: {exc}); "
            "rerun with --debug and report it",
            file=sys.stderr,
        )
        return EXIT_BUG


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
