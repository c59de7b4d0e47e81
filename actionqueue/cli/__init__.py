"""The ``actionqueue`` command line (also ``python -m actionqueue``).

Every subcommand is a module of this package with four names::

    NAME = "dump"                      # the subcommand
    HELP = "one line for the command list"
    def add_arguments(parser): ...     # its argparse arguments (parser is its subparser)
    def run(args) -> int: ...          # does the work, returns the exit status

and is listed in :data:`COMMANDS`; adding a subcommand is a new module plus one entry
there.

One exit-status rule for every command (:data:`EXIT_RULE`): 0 clean, 1 a problem found
in the data, 2 a usage or input error. ``run`` returns 0 or 1, or raises
:class:`~actionqueue.cli._common.CliError` for anything the user can act on; the
library's own errors (damage, a held lock, a path that is no data dir) are turned into
such lines by :func:`main` as well. Every error is one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import NoReturn

from ..errors import Terminated
from ._common import EXIT_OK, EXIT_PROBLEM, EXIT_TERMINATED, EXIT_USAGE, CliError

__all__ = ["COMMANDS", "EXIT_RULE", "build_parser", "main"]

#: Subcommand modules of this package, in the order ``--help`` lists them.
COMMANDS: list[str] = [
    "demo",
    "dump",
    "stats",
    "export",
    "verify",
    "repair",
    "snapshot",
    "compact",
    "inspect",
    "bench",
]

PROG = "actionqueue"

#: The exit statuses, as ``--help`` and the README state them.
EXIT_RULE = """\
exit status (every command): 0 clean; 1 a problem found in the data (damage, a log that
does not replay, a check that failed, an I/O error on the data); 2 a usage or input error
(bad options or values, a path that is no data dir, an unknown id, a data dir another
process has open for writing, a missing optional extra). A closed output pipe
('actionqueue dump DIR | head') ends the command quietly with 0; Ctrl-C exits 130."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2), as every other error of the command line."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _command_modules() -> list[ModuleType]:
    return [importlib.import_module(f"{__name__}.{name}") for name in COMMANDS]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand of :data:`COMMANDS`."""
    from .. import __version__, backend

    parser = _Parser(
        prog=PROG,
        description="Inspect, check, repair and benchmark actionqueue data dirs "
        "(the WAL v5 storage layer of ActionQueue).",
        epilog="Run 'actionqueue COMMAND --help' for a command's options.\n\n" + EXIT_RULE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
        p.set_defaults(_run=module.run, _prog=f"{PROG} {module.NAME}", _parser=p)
    return parser


def _library_error(exc: BaseException) -> tuple[int, str] | None:
    """The exit status and one line for an error of the library a user can run into; None
    for anything else (a bug: its traceback is worth having)."""
    from ..errors import (ActionQueueError, MissingExtra, NotADataDir, OutputError, SnapshotError, UnknownFile,
                          WalCorruption, WalLocked)
    from ._common import describe_corruption, not_a_data_dir

    if isinstance(exc, UnknownFile):
        if not exc.in_log:  # nothing of a log in wal/: the path given is no data dir
            return EXIT_USAGE, not_a_data_dir(exc)
        return EXIT_PROBLEM, str(exc)
    if isinstance(exc, WalCorruption):
        return EXIT_PROBLEM, describe_corruption(exc) + "; see 'actionqueue verify' and 'actionqueue repair'"
    if isinstance(exc, WalLocked):
        return EXIT_USAGE, f"{exc} (another process has the data dir open for writing: stop it first)"
    if isinstance(exc, OutputError):  # the output cannot be written: not a problem of the data
        return EXIT_USAGE, str(exc)
    if isinstance(exc, (NotADataDir, MissingExtra)):
        return EXIT_USAGE, str(exc)
    if isinstance(exc, SnapshotError):
        return EXIT_PROBLEM, f"snapshot: {type(exc).__name__} ({exc.kind}): {exc}"
    if isinstance(exc, ActionQueueError):
        return EXIT_PROBLEM, f"{type(exc).__name__}: {exc}"
    if isinstance(exc, OSError):
        line = f"{exc.strerror or type(exc).__name__}: {exc.filename}" if exc.filename else str(exc)
        # a path that cannot be used as given is an input error; any other (EIO, ENOSPC) a
        # failure on the data
        usage = isinstance(exc, (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError))
        return (EXIT_USAGE if usage else EXIT_PROBLEM), line
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
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit
    status: 0 clean, 1 a problem found in the data, 2 a usage or input error
    (:data:`EXIT_RULE`)."""
    try:
        code = _main(argv)
    except BrokenPipeError:  # the reader went away ('dump | head'): nothing more to say
        _silence_stdout()
        return EXIT_OK
    try:
        sys.stdout.flush()  # here, not at exit, where a closed pipe prints "Exception ignored"
    except BrokenPipeError:  # the command had finished: its verdict stands
        _silence_stdout()
    except (OSError, ValueError):  # stdout closed or gone: nothing to flush to
        pass
    return code


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:  # said by the subcommand's parser, which names its own --help
            (getattr(args, "_parser", None) or parser).error(f"unrecognized arguments: {' '.join(extra)}")
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
    except Terminated:  # SIGTERM, turned into an exception by the command (export)
        _err(prog, "terminated")
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        _err(prog, "interrupted")
        return 130
    except BrokenPipeError:
        raise
    except Exception as exc:
        known = _library_error(exc)
        if known is None:
            raise
        _err(prog, known[1])
        return known[0]


def _err(prog: str, message: str) -> None:
    try:
        sys.stdout.flush()
    except (BrokenPipeError, OSError, ValueError):
        pass
    try:
        print(f"{prog}: error: {message}", file=sys.stderr, flush=True)
    except (BrokenPipeError, OSError, ValueError):
        pass
