"""One description per command: name, help, flags and handler; the CLI and invoke are built from it.

Why: the console script (argparse), the invoke collection and the nox
sessions took the same flags, each defining them again (``--format`` three
times), kept equal by tests.  Here every flag is written once, as data;
`rollsafe.cli` turns the descriptions into sub-parsers, `rollsafe.invoke_tasks`
into tasks, and both run a command through `execute`, so a flag, its help,
its validation and the error a user sees are the same everywhere.

This module imports no command module: a handler is named by its import
path and imported when its command runs, so building the parser or the
invoke collection never loads git, psycopg or pglast.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rollsafe.config import Config, load_config
from rollsafe.errors import EXIT_BAD_INPUT, ConfigError, RollsafeError, report

#: A command's handler: the loaded config and the parsed flags in, an exit code out.
Handler = Callable[[Config, argparse.Namespace], int]

#: Where the database URL comes from without --dsn (`rollsafe.engines.URL_ENV`, which a
#: test keeps equal; repeated so that describing the command imports no driver).
URL_ENV = "ROLLSAFE_DATABASE_URL"


@dataclass(frozen=True)
class Flag:
    """One flag (or positional argument) of a command, as a user types it."""

    name: str  # ``format`` is typed ``--format``; a positional's name is its attribute
    help: str
    metavar: str | None = None
    dest: str | None = None  # the attribute of the parsed flags (default: the name, _ for -)
    choices: tuple[str, ...] = ()
    default: str | None = None
    switch: bool = False  # takes no value; True when given
    required: bool = False
    positional: bool = False
    exclusive: bool = False  # at most one of a command's exclusive flags may be given
    convert: Callable[[str], Any] | None = None  # turns the text into the value

    @property
    def attr(self) -> str:
        """The attribute of the parsed flags that holds this flag's value."""
        return self.dest or self.name.replace("-", "_")


@dataclass(frozen=True)
class Command:
    """A sub-command: its lines in ``rollsafe --help`` and ``invoke --list``, flags, handler."""

    name: str
    help: str  # ``rollsafe --help``'s line and the sub-command's description
    handler: str  # ``module:function``, imported when the command runs
    flags: tuple[Flag, ...]
    task: str | None = None  # the invoke task's docstring; None: no invoke task
    long_running: bool = False  # keeps Python's cyclic garbage collector on (see `_collector`)

    def resolve(self) -> Handler:
        """The handler function (its module is imported now, not before)."""
        module, _, function = self.handler.partition(":")
        handler: Handler = getattr(importlib.import_module(module), function)
        return handler


def _version(text: str) -> int:
    """A migration version given on the command line (an integer >= 0)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a migration version: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"not a migration version: {text!r}")
    return value


def _seconds(text: str) -> float:
    """A duration in seconds (``--lock-timeout``), 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}")
    return value


def _rows(text: str) -> int:
    """A number of generated rows given on the command line (0 to 1000)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of rows: {text!r}") from None
    if not 0 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"not a number of rows (0 to 1000): {text!r}")
    return value


# -- flags every command takes ------------------------------------------------------------------

REPO = Flag("repo", "the git repository (default: here)", metavar="PATH")
DEBUG = Flag("debug", "show the traceback of an error (for bug reports)", switch=True)
NO_CACHE = Flag(
    "no-cache",
    "read the whole history from git, ignoring and keeping the history cache "
    "(also: ROLLSAFE_NO_CACHE=1)",
    switch=True,
)
COMMON = (REPO, DEBUG, NO_CACHE)

#: The heading of the flags that override ``[tool.rollsafe]`` keys.
CONFIG_TITLE = "configuration (overrides [tool.rollsafe])"
#: Prefix of the attributes of configuration flags (``--cl-strategy`` -> ``config_cl_strategy``).
CONFIG_PREFIX = "config_"


def _config_flag(name: str, metavar: str, help: str) -> Flag:
    return Flag(name, help, metavar=metavar, dest=CONFIG_PREFIX + name.replace("-", "_"))


ENGINE = _config_flag(
    "engine", "NAME", "throwaway database engine: auto, postgres, cockroach or external"
)
#: One flag per ``[tool.rollsafe]`` key, on every command.
CONFIG = (
    _config_flag("migrations", "FOLDER", "migrations folder, relative to the repository"),
    _config_flag("deploying", "FILE", "the DEPLOYING file that holds the table"),
    _config_flag(
        "svg",
        "FILE",
        "the landing-order picture (default: beside the DEPLOYING file; release-table "
        "--no-svg: none)",
    ),
    _config_flag("releases", "FOLDER", "folder of release records"),
    _config_flag(
        "fixtures",
        "FOLDER",
        "folder of upgrade fixtures (<version>/seed.sql, check.sql, fixture.py)",
    ),
    _config_flag("queries", "GLOBS", "comma-separated globs of the code's query files"),
    _config_flag(
        "cl-strategy", "NAME", "how code versions are named: auto, gerrit, ordinal or tag"
    ),
    _config_flag("tag-glob", "GLOB", "tags that are versions, with --cl-strategy tag (default v*)"),
    _config_flag("branch", "BRANCH", "release branch (default: the checked-out branch)"),
    _config_flag("baseline", "VERSION", "fold every migration up to this version into row 0"),
    _config_flag("migrations-table", "TABLE", "golang-migrate's state table (x-migrations-table)"),
    ENGINE,
)

# -- flags shared by several commands -----------------------------------------------------------

FORMAT = Flag(
    "format",
    "text for humans (default) or json for other tools",
    dest="fmt",
    choices=("text", "json"),
    default="text",
)
STRICT = Flag("strict", "fail on warnings too", switch=True)

#: Which pairs to run, where to report, how to isolate: the CLI's and the nox sessions'.
PAIR_SELECTION = (
    Flag("pair", "one pair: its id (3->4) or the version it upgrades to (4)", metavar="V"),
    Flag("from", "pairs starting at V or later", metavar="V", dest="start", convert=_version),
    Flag("to", "pairs ending at V or earlier", metavar="V", dest="end", convert=_version),
    Flag("junit", "also write a JUnit XML report", metavar="PATH", convert=Path),
    Flag(
        "state-cache",
        "keep database states here across runs, e.g. a CI cache folder "
        "(default: .git/rollsafe/states; also ROLLSAFE_STATE_CACHE)",
        metavar="DIR",
        convert=Path,
    ),
    Flag(
        "isolation",
        "chain (default): pairs run in turn on one database, rebuilt after a failure; "
        "clone: each pair on a clone of a snapshot of its state (two copies a pair)",
        choices=("chain", "clone"),
        default="chain",
    ),
    Flag(
        "seed-rows",
        "rows generated from the catalog per table and state (default: the seed_rows setting, 3)",
        metavar="N",
        convert=_rows,
    ),
    Flag(
        "no-generated-seeds",
        "no generated rows: only the hand-written seed fixtures populate the database",
        switch=True,
    ),
)

# -- the commands, in the order ``rollsafe --help`` lists them ----------------------------------

COMMANDS = (
    Command(
        "release-table",
        "write the CL/schema compatibility table of the DEPLOYING file from git history",
        "rollsafe.commands.table:handle_release_table",
        (
            Flag(
                "check",
                "write nothing; print a diff and exit 1 when the file is stale (for CI)",
                switch=True,
            ),
            Flag(
                "no-svg",
                "neither write nor link the landing-order picture (see the `svg` key)",
                switch=True,
            ),
            FORMAT,
        ),
        task="Write the schema/version compatibility table into the DEPLOYING file.",
    ),
    Command(
        "which",
        "print the row, schema, commit and landing date of one CL",
        "rollsafe.commands.table:handle_which",
        (
            Flag(
                "cl",
                "a CL (Gerrit number, ordinal, tag) or commit",
                metavar="CL",
                required=True,
                positional=True,
            ),
            FORMAT,
        ),
        task="Print the row, schema, commit and landing date of one CL.",
    ),
    Command(
        "upgrade-plan",
        "print the safe sequence of live and offline steps from one CL to another "
        "(a rollback when --to landed earlier)",
        "rollsafe.commands.table:handle_upgrade_plan",
        (
            Flag("from", "running CL", metavar="CL", dest="start", required=True),
            Flag("to", "wanted CL", metavar="CL", dest="target", required=True),
            Flag("offline", "plan one offline jump (a maintenance window)", switch=True),
            Flag(
                "allow-restore",
                "rollback: plan past a step only a backup can undo (writes since it are lost)",
                switch=True,
            ),
            FORMAT,
        ),
        task="Print the safe sequence of rolling and offline steps from one CL to another "
        "(a rollback plan when --to landed earlier).",
    ),
    Command(
        "release",
        "write the release record releases/<CL>.toml of a deployed CL",
        "rollsafe.commands.table:handle_release",
        (Flag("cl", "the CL that was deployed", metavar="CL", required=True),),
        task="Write the release record releases/<CL>.toml (refuses to overwrite one).",
    ),
    Command(
        "lint",
        "check migrations (SQL rules, directives) and their history; infer live/offline",
        "rollsafe.commands.lint:handle_lint",
        (
            Flag(
                "format",
                "text (default), json, github (workflow commands: annotations on the pull "
                "request) or sarif (SARIF 2.1.0, for code scanning)",
                dest="fmt",
                choices=("text", "json", "github", "sarif"),
                default="text",
            ),
            STRICT,
            Flag(
                "no-history",
                "lint the files only (no git history, no release records)",
                switch=True,
            ),
        ),
        task="Lint migration files and history: SQL rules, shipped-file edits, ordering hazards.",
    ),
    Command(
        "migrate",
        "apply, undo or inspect migrations on a database (golang-migrate's state table)",
        "rollsafe.commands.migrate:handle_migrate",
        (
            Flag(
                "dsn",
                f"the database (default: ${URL_ENV}); golang-migrate URLs work too",
                metavar="URL",
            ),
            Flag("to", "migrate up to and including VERSION", metavar="VERSION", exclusive=True),
            Flag(
                "down-to",
                "undo migrations newer than VERSION (`none`: all)",
                metavar="VERSION",
                exclusive=True,
            ),
            Flag("goto", "move up or down to VERSION", metavar="VERSION", exclusive=True),
            Flag(
                "force",
                "set the version and clear the dirty flag, running nothing (after a repair)",
                metavar="VERSION",
                exclusive=True,
            ),
            Flag("status", "print the state, change nothing", switch=True, exclusive=True),
            Flag(
                "strict",
                "fail when the database is newer than this code's newest migration",
                switch=True,
            ),
            Flag(
                "lock-timeout",
                "give up when another migrator holds the lock this long (default: 15, "
                "golang-migrate's)",
                metavar="SECONDS",
                default="15",
                convert=_seconds,
            ),
            Flag(
                "files-at",
                "run the migration files as they were at CL (read from git, no checkout): "
                "undo a newer schema with the newer code's down files",
                metavar="CL",
            ),
            FORMAT,
        ),
        task="Apply, undo or inspect migrations on a real database (golang-migrate's state table).",
    ),
    Command(
        "upgrade-pairs",
        "test the upgrade of every adjacent pair of schema rows against a throwaway database",
        "rollsafe.commands.pairs:handle_upgrade_pairs",
        (
            *PAIR_SELECTION,
            Flag("list", "list the pairs (and nox session names); run nothing", switch=True),
            FORMAT,
        ),
        long_running=True,
    ),
)


def add_flags(parser: argparse._ActionsContainer, flags: Sequence[Flag]) -> None:
    """Add ``flags`` to an argparse parser or group, in order (exclusive ones in one group)."""
    exclusive: argparse._MutuallyExclusiveGroup | None = None
    for flag in flags:
        target = parser
        if flag.exclusive:
            exclusive = exclusive or parser.add_mutually_exclusive_group()
            target = exclusive
        if flag.positional:
            target.add_argument(flag.attr, metavar=flag.metavar, help=flag.help)
        elif flag.switch:
            target.add_argument(
                f"--{flag.name}", dest=flag.attr, action="store_true", help=flag.help
            )
        else:
            options: dict[str, Any] = {"type": flag.convert} if flag.convert else {}
            target.add_argument(
                f"--{flag.name}",
                dest=flag.attr,
                metavar=flag.metavar,
                choices=flag.choices or None,
                default=flag.default,
                required=flag.required,
                help=flag.help,
                **options,
            )


def add_common_flags(parser: argparse.ArgumentParser) -> None:
    """``--repo``, ``--debug``, ``--no-cache`` and the configuration flags."""
    add_flags(parser, COMMON)
    add_flags(parser.add_argument_group(CONFIG_TITLE), CONFIG)


class UsageError(ConfigError):
    """Flags given to a task that argparse would have refused (one line, exit 2)."""

    exit_code = EXIT_BAD_INPUT


def parse_values(command: Command, values: Mapping[str, Any]) -> argparse.Namespace:
    """The parsed flags of ``command`` from ``attr -> value`` (None: not given), checked.

    Why: invoke parses its own command line; this applies what argparse
    applies for the CLI (required flags, choices, exclusive flags,
    conversions), so a handler gets the same flags either way.
    """
    flags = (*command.flags, *COMMON, *CONFIG)
    parsed = {flag.attr: values.get(flag.attr) for flag in flags}
    missing = [f for f in command.flags if f.required]
    if not all(parsed[f.attr] for f in missing):
        wanted = " and ".join(f"--{f.name} {f.metavar}" for f in missing)
        raise UsageError(f"{command.name} needs {wanted}")
    given = [f for f in command.flags if f.exclusive and parsed[f.attr]]
    if len(given) > 1:
        names = ", ".join(f"--{f.name}" for f in command.flags if f.exclusive)
        raise UsageError(f"give at most one of {names}")
    for flag in flags:
        value = parsed[flag.attr]
        if flag.switch:
            parsed[flag.attr] = bool(value)
        elif value is None:
            parsed[flag.attr] = flag.default
        elif flag.choices and value not in flag.choices:
            raise UsageError(f"bad --{flag.name} {value!r} (use {' or '.join(flag.choices)})")
        elif flag.convert is not None:
            try:
                parsed[flag.attr] = flag.convert(value)
            except (ValueError, argparse.ArgumentTypeError) as exc:
                raise UsageError(f"bad --{flag.name}: {exc}") from None
    return argparse.Namespace(**parsed)


def config_from(args: argparse.Namespace) -> Config:
    """Load the configuration of ``--repo`` with the configuration flags that were given."""
    overrides = {
        key[len(CONFIG_PREFIX) :]: value
        for key, value in vars(args).items()
        if key.startswith(CONFIG_PREFIX)
    }
    return load_config(args.repo, overrides)


def execute(command: Command, args: argparse.Namespace) -> int:
    """Run ``command`` with parsed flags: the one place where errors become a line and a code.

    A `RollsafeError` prints ``rollsafe: <message>`` (after its traceback
    with ``--debug``) and returns its exit code; Ctrl-C returns 130 once the
    handler's ``with`` blocks have stopped servers and removed folders.
    """
    try:
        config = config_from(args)
        handler = command.resolve()
        with _history_cache(enabled=not args.no_cache), _collector(command):
            return handler(config, args)
    except (RollsafeError, KeyboardInterrupt) as exc:
        return report(exc, debug=args.debug)


@contextlib.contextmanager
def _collector(command: Command) -> Iterator[None]:
    """Run a short command without the cyclic garbage collector.

    Why: a release table of 50,000 CLs is some 300,000 long-lived objects
    without a single cycle; the collector's passes over them free nothing
    and cost about 0.1 s of such a run (a fifth), and the process exits
    right after.  Reference counting still frees everything that is dropped.
    """
    if command.long_running or not gc.isenabled():
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
