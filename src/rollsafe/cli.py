"""The ``rollsafe`` console script: argparse built from the command descriptions.

Why: release engineers without invoke need the same commands, and CI needs
one clean line and a stable exit code for every failure.  Each sub-command
and its flags are described once in `rollsafe.commands._spec`; this module
only turns the descriptions into parsers and hands the parsed flags to
`execute`, the one place where errors become exit codes.

Building the parser imports no command module: only the handler of the
sub-command being run is imported, so the release table, which runs on
every CI job, never pays for the database driver or the pair machinery
that ``migrate`` and ``upgrade-pairs`` need.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rollsafe.commands._spec import COMMANDS, Command, add_common_flags, add_flags, execute


def build_parser() -> argparse.ArgumentParser:
    """The parser of every sub-command, each with the flags every command takes."""
    parser = argparse.ArgumentParser(
        prog="rollsafe",
        description="Which code version ships which schema, and is every upgrade step safe.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = argparse.ArgumentParser(add_help=False)
    add_common_flags(common)
    for command in COMMANDS:
        sub = subparsers.add_parser(
            command.name, help=command.help, description=command.help, parents=[common]
        )
        add_flags(sub, command.flags)
        sub.set_defaults(spec=command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one sub-command; an error becomes one line on stderr and its exit code.

    Standard output is guarded (`guard_output`): a closed pipe is a quiet
    exit 141, a failed write (a full disk) one line and exit 1.
    """
    from rollsafe.commands._output import guard_output  # not at the top: see build_parser

    return guard_output(lambda: _main(argv))


def _main(argv: Sequence[str] | None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(arguments)
    command: Command = args.spec
    return execute(command, args)


if __name__ == "__main__":  # pragma: no cover - exercised through the console script
    sys.exit(main())
