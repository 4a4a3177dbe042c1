"""The ``rollsafe`` console script: one parser, one place where errors become exit codes.

Why: release engineers without invoke need the same commands, and CI needs
one clean line and a stable exit code for every failure.  Each command
module under ``rollsafe.commands`` registers its own sub-command through
`Registry.add`, so the CLI stays a thin dispatcher over typed functions that
invoke and nox call too.

Only the module of the sub-command being run is imported (`COMMANDS` maps
each sub-command to its module): the release table runs on every CI job
and must not pay for the database driver or the pair machinery that
``migrate`` and ``upgrade-pairs`` need.  ``rollsafe --help`` and unknown
commands import them all, so the help lists every sub-command.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import sys
import traceback
from collections.abc import Iterator, Sequence

from rollsafe.commands._registry import Handler, Registry
from rollsafe.config import Config, load_config
from rollsafe.errors import RollsafeError

#: Modules that register sub-commands, in the order ``rollsafe --help`` lists them.
COMMAND_MODULES = (
    "rollsafe.commands.table",
    "rollsafe.commands.lint",
    "rollsafe.commands.migrate",
    "rollsafe.commands.pairs",
)

#: The module that registers each sub-command (a test checks it against the modules).
COMMANDS = {
    "release-table": "rollsafe.commands.table",
    "which": "rollsafe.commands.table",
    "upgrade-plan": "rollsafe.commands.table",
    "release": "rollsafe.commands.table",
    "lint": "rollsafe.commands.lint",
    "migrate": "rollsafe.commands.migrate",
    "upgrade-pairs": "rollsafe.commands.pairs",
}

#: Sub-commands that run long (a throwaway database per pair) and keep Python's cyclic
#: garbage collector on; the others build one large acyclic structure from history and
#: exit, so collector passes over it would only cost time (see `main`).
LONG_RUNNING = frozenset({"upgrade-pairs"})

#: Flags that override ``[tool.rollsafe]`` keys, on every sub-command.
CONFIG_FLAGS: tuple[tuple[str, str], ...] = (
    ("migrations", "migrations folder, relative to the repository"),
    ("deploying", "the DEPLOYING file that holds the table"),
    ("releases", "folder of release records"),
    ("fixtures", "folder of upgrade fixtures (<version>/seed.sql, check.sql, fixture.py)"),
    ("queries", "comma-separated globs of the code's query files"),
    ("cl-strategy", "how code versions are named: auto, gerrit, ordinal or tag"),
    ("tag-glob", "tags that are versions, with --cl-strategy tag (default v*)"),
    ("branch", "release branch (default: the checked-out branch)"),
    ("baseline", "fold every migration up to this version into row 0"),
    ("migrations-table", "golang-migrate's state table (x-migrations-table)"),
    ("engine", "throwaway database engine: auto, postgres, cockroach or external"),
)

METAVARS = {
    "migrations": "FOLDER",
    "deploying": "FILE",
    "releases": "FOLDER",
    "fixtures": "FOLDER",
    "queries": "GLOBS",
    "cl-strategy": "NAME",
    "tag-glob": "GLOB",
    "branch": "BRANCH",
    "baseline": "VERSION",
    "migrations-table": "TABLE",
    "engine": "NAME",
}


def _common_options() -> argparse.ArgumentParser:
    """Options every sub-command accepts, so the tool runs against any repository unedited."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--repo", default=None, metavar="PATH", help="the git repository (default: here)"
    )
    common.add_argument(
        "--debug", action="store_true", help="show the traceback of an error (for bug reports)"
    )
    common.add_argument(
        "--no-cache",
        action="store_true",
        help="read the whole history from git, ignoring and keeping the history cache "
        "(also: ROLLSAFE_NO_CACHE=1)",
    )
    group = common.add_argument_group("configuration (overrides [tool.rollsafe])")
    for flag, text in CONFIG_FLAGS:
        group.add_argument(
            f"--{flag}",
            dest=f"config_{flag.replace('-', '_')}",
            metavar=METAVARS.get(flag, "VALUE"),
            help=text,
        )
    return common


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; each command module's ``register(registry)`` adds its part.

    With the name of a known sub-command, only its module is imported and
    registered (see the module docstring); otherwise all of them are.
    """
    parser = argparse.ArgumentParser(
        prog="rollsafe",
        description="Which code version ships which schema, and is every upgrade step safe.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    registry = Registry(subparsers=subparsers, common=_common_options())
    wanted = COMMANDS.get(command or "")
    for module_name in COMMAND_MODULES if wanted is None else (wanted,):
        module = importlib.import_module(module_name)
        module.register(registry)
    return parser


def command_of(argv: Sequence[str]) -> str | None:
    """The sub-command named on a command line: its first argument that is not an option."""
    for argument in argv:
        if not argument.startswith("-"):
            return argument
    return None


def config_from(args: argparse.Namespace) -> Config:
    """Load the configuration of ``--repo`` with the flags that were given."""
    overrides = {
        key[len("config_") :]: value
        for key, value in vars(args).items()
        if key.startswith("config_")
    }
    return load_config(args.repo, overrides)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one sub-command; a `RollsafeError` becomes one line on stderr and its exit code."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(command_of(arguments))
    args = parser.parse_args(arguments)
    try:
        config = config_from(args)
        handler: Handler = args.handler
        with _history_cache(enabled=not args.no_cache), _collector(args.command):
            return handler(config, args)
    except RollsafeError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"rollsafe: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("rollsafe: interrupted", file=sys.stderr)
        return 130


@contextlib.contextmanager
def _collector(command: str) -> Iterator[None]:
    """Run a short command without the cyclic garbage collector.

    Why: a release table of 50,000 CLs is some 300,000 long-lived objects
    without a single cycle; the collector's passes over them free nothing
    and cost about 0.1 s of such a run (a fifth), and the process exits
    right after.  Reference counting still frees everything that is dropped.
    """
    if command in LONG_RUNNING or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _history_cache(*, enabled: bool) -> contextlib.AbstractContextManager[None]:
    """``--no-cache``: every history read of the command bypasses the cache."""
    if enabled:
        return contextlib.nullcontext()
    from rollsafe.history import cache_disabled  # only then: keep `--help` light

    return cache_disabled()


if __name__ == "__main__":  # pragma: no cover - exercised through the console script
    sys.exit(main())
