"""The ``actionqueue`` command line (also ``python -m actionqueue``).

Every subcommand is a module of this package with four names::

    NAME = "dump"                      # the subcommand
    HELP = "one line for the command list"
    def add_arguments(parser): ...     # its argparse arguments (parser is its subparser)
    def run(args) -> int: ...          # does the work, returns the exit status

and is listed in :data:`COMMANDS`; adding a subcommand is a new module plus one entry
there. ``run`` raises :class:`~actionqueue.cli._common.CliError` for anything the user can
act on (one line on stderr, exit 1 for problems found, 2 for usage); the library's own
errors (corruption, a held lock, a damaged snapshot) are turned into such lines by
:func:`main` as well, so no traceback reaches the user for them.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from ._common import EXIT_PROBLEM, EXIT_USAGE, CliError

__all__ = ["COMMANDS", "build_parser", "main"]

#: Subcommand modules of this package, in the order ``--help`` lists them.
COMMANDS: list[str] = [
    "demo",
    "dump",
    "stats",
    "verify",
    "repair",
    "snapshot",
    "compact",
    "inspect",
    "bench",
]

PROG = "actionqueue"


def _command_modules() -> list[ModuleType]:
    return [importlib.import_module(f"{__name__}.{name}") for name in COMMANDS]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand of :data:`COMMANDS`."""
    from .. import __version__, backend

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Inspect, check, repair and benchmark actionqueue data dirs "
        "(the WAL v5 storage layer of ActionQueue).",
        epilog="Run 'actionqueue COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__} (backend {backend})")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _command_modules():
        p = sub.add_parser(
            module.NAME,
            help=module.HELP,
            description=getattr(module, "DESCRIPTION", None) or module.HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(_run=module.run, _prog=f"{PROG} {module.NAME}")
    return parser


def _library_error_message(exc: BaseException) -> str | None:
    """One line for the library errors a user can run into, None for anything else."""
    from ..errors import ActionQueueError
    from ..snapshot import SnapshotError
    from ..wal import WalCorruption, WalLocked
    from ._common import describe_corruption

    if isinstance(exc, WalCorruption):
        hint = "; see 'actionqueue verify' and 'actionqueue repair'"
        return describe_corruption(exc) + hint
    if isinstance(exc, WalLocked):
        return f"{exc} (another process has the data dir open for writing)"
    if isinstance(exc, SnapshotError):
        return f"snapshot: {type(exc).__name__} ({exc.kind}): {exc}"
    if isinstance(exc, ActionQueueError):
        return f"{type(exc).__name__}: {exc}"
    if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)):
        return f"{exc.strerror or type(exc).__name__}: {exc.filename}" if exc.filename else str(exc)
    return None


def _silence_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null so the interpreter's final flush
    does not complain again (only when stdout is a real file descriptor)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)
    except OSError:
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit status.

    0 success, 1 problems found (corruption, a failed check, a held lock), 2 usage errors
    (bad arguments, not a data dir, a bad id), 130 interrupted, 141 broken pipe.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, argparse errors
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_USAGE
    if getattr(args, "_run", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    prog = args._prog
    try:
        return int(args._run(args) or 0)
    except CliError as exc:
        _err(prog, str(exc))
        return exc.code
    except BrokenPipeError:
        _silence_stdout()
        return 141
    except KeyboardInterrupt:
        _err(prog, "interrupted")
        return 130
    except Exception as exc:
        message = _library_error_message(exc)
        if message is None:
            raise
        _err(prog, message)
        return EXIT_PROBLEM


def _err(prog: str, message: str) -> None:
    try:
        sys.stdout.flush()
    except (BrokenPipeError, OSError, ValueError):
        pass
    try:
        print(f"{prog}: error: {message}", file=sys.stderr, flush=True)
    except (BrokenPipeError, OSError, ValueError):
        pass
