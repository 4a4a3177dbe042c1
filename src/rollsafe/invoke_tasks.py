"""rollsafe's invoke collection, so a repository's tasks.py reuses it in two lines.

Why: release engineers type ``invoke release-table``; the tasks here only
turn flags into a `Config` and call the same typed command functions as the
``rollsafe`` console script, so there is one behaviour to test.  Every task
also takes ``--repo`` and a flag per ``[tool.rollsafe]`` key, so it runs
against any repository without editing it.

In another repository::

    # tasks.py
    from rollsafe.invoke_tasks import namespace
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable
from typing import Any, Literal, cast

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task as invoke_task

from rollsafe.cli import CONFIG_FLAGS
from rollsafe.config import Config, load_config
from rollsafe.errors import RollsafeError
from rollsafe.history import cache_disabled

CONFIG_KEYS = tuple(flag.replace("-", "_") for flag, _ in CONFIG_FLAGS)
CONFIG_HELP = {flag.replace("-", "_"): text for flag, text in CONFIG_FLAGS}
Format = Literal["text", "json"]


def _format(value: str) -> Format:
    if value not in ("text", "json"):
        raise Exit(f"rollsafe: bad --format {value!r} (use text or json)", code=2)
    return cast(Format, value)


def with_config(body: Callable[..., int]) -> Callable[..., None]:
    """Give a task ``--repo`` and one flag per config key, and one clean line per error.

    The wrapped ``body(config, **flags)`` gets a loaded `Config` in place of the
    context; its exit code becomes `invoke.Exit`, and a `RollsafeError` becomes
    ``rollsafe: <message>`` with the error's exit code (never a traceback).
    """
    own = list(inspect.signature(body).parameters.values())[1:]

    @functools.wraps(body)
    def wrapper(c: Context, **kwargs: Any) -> None:
        repo = kwargs.pop("repo", None)
        no_cache = bool(kwargs.pop("no_cache", False))
        overrides = {key: kwargs.pop(key, None) for key in CONFIG_KEYS}
        try:
            config = load_config(repo, overrides)
            with cache_disabled() if no_cache else contextlib.nullcontext():
                code = body(config, **kwargs)
        except RollsafeError as exc:
            raise Exit(f"rollsafe: {exc.message}", code=exc.exit_code) from None
        except KeyboardInterrupt:
            raise Exit("rollsafe: interrupted", code=130) from None
        if code:
            raise Exit(code=code)

    context = inspect.Parameter("c", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    extra = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None)
        for name in ("repo", *CONFIG_KEYS)
    ]
    extra.append(inspect.Parameter("no_cache", inspect.Parameter.KEYWORD_ONLY, default=False))
    wrapper.__signature__ = inspect.Signature([context, *own, *extra])  # type: ignore[attr-defined]
    return wrapper


def task(**options: Any) -> Callable[[Callable[..., None]], Any]:
    """invoke's ``@task`` without generated one-letter flags: a dozen of them would only confuse."""
    return cast(Callable[[Callable[..., None]], Any], invoke_task(auto_shortflags=False, **options))


def _help(**own: str) -> dict[str, str]:
    return {
        **own,
        "repo": "the git repository (default: here)",
        "no_cache": "read all of history from git, bypassing .git/rollsafe",
        **CONFIG_HELP,
    }


@task(
    name="release-table",
    help=_help(
        check="compare only; exit 1 with a diff when stale", format="text (default) or json"
    ),
)
@with_config
def release_table(config: Config, check: bool = False, format: str = "text") -> int:
    """Write the schema/version compatibility table into the DEPLOYING file."""
    from rollsafe.commands import table as table_commands  # per task: keep `invoke -l` light

    return table_commands.release_table(config, check=check, fmt=_format(format))


@task(positional=["cl"], help=_help(cl="the CL to look up", format="text (default) or json"))
@with_config
def which(config: Config, cl: str | None = None, format: str = "text") -> int:
    """Print the row, schema, commit and landing date of one CL."""
    from rollsafe.commands import table as table_commands  # per task: keep `invoke -l` light

    if not cl:
        raise Exit("rollsafe: which needs --cl CL", code=2)
    return table_commands.which(config, cl, fmt=_format(format))


@task(
    name="upgrade-plan",
    help=_help(
        from_="the CL running now",
        to="the CL to reach",
        offline="plan one offline jump instead of rolling steps",
        format="text (default) or json",
    ),
)
@with_config
def upgrade_plan(
    config: Config, from_: str = "", to: str = "", offline: bool = False, format: str = "text"
) -> int:
    """Print the safe sequence of rolling and offline steps from one CL to another."""
    from rollsafe.commands import table as table_commands  # per task: keep `invoke -l` light

    if not from_ or not to:
        raise Exit("rollsafe: upgrade-plan needs --from CL and --to CL", code=2)
    return table_commands.upgrade_plan(config, from_, to, offline=offline, fmt=_format(format))


@task(help=_help(cl="the CL being released"))
@with_config
def release(config: Config, cl: str = "") -> int:
    """Write the release record releases/<CL>.toml (refuses to overwrite one)."""
    from rollsafe.commands import table as table_commands  # per task: keep `invoke -l` light

    if not cl:
        raise Exit("rollsafe: release needs --cl CL", code=2)
    return table_commands.release(config, cl)


@task(
    name="lint",
    help=_help(
        strict="fail on warnings too",
        format="text (default) or json",
        no_history="lint the files only (no git history, no release records)",
    ),
)
@with_config
def lint(
    config: Config, strict: bool = False, format: str = "text", no_history: bool = False
) -> int:
    """Lint migration files and history: SQL rules, shipped-file edits, ordering hazards."""
    from rollsafe.commands import lint as lint_commands  # per task: keep `invoke -l` light

    return lint_commands.lint(config, strict=strict, fmt=_format(format), history=not no_history)


@task(
    help=_help(
        dsn="database URL (default: $ROLLSAFE_DATABASE_URL)",
        to="migrate up to and including VERSION",
        down_to="undo migrations newer than VERSION (`none`: all)",
        goto="move up or down to VERSION",
        force="set VERSION and clear the dirty flag, running nothing",
        status="print the state, change nothing",
        strict="fail when the database is newer than the code",
        format="text (default) or json",
    )
)
@with_config
def migrate(
    config: Config,
    dsn: str = "",
    to: str = "",
    down_to: str = "",
    goto: str = "",
    force: str = "",
    status: bool = False,
    strict: bool = False,
    format: str = "text",
) -> int:
    """Apply, undo or inspect migrations on a real database (golang-migrate's state table)."""
    from rollsafe.commands import migrate as migrate_commands  # per task: keep `invoke -l` light

    chosen = [
        (name, value)
        for name, value in (("to", to), ("down-to", down_to), ("goto", goto), ("force", force))
        if value
    ]
    if len(chosen) + int(status) > 1:
        raise Exit("rollsafe: give at most one of --to, --down-to, --goto, --force, --status", 2)
    action: migrate_commands.Action = "status" if status else "up"
    version: int | None = None
    if chosen:
        name, value = chosen[0]
        action = cast(migrate_commands.Action, name)
        version = migrate_commands.parse_version(value, allow_none=name != "to")
    return migrate_commands.migrate(
        config, dsn or None, action=action, version=version, strict=strict, fmt=_format(format)
    )


namespace = Collection(release_table, which, upgrade_plan, release, lint, migrate)
ns = namespace
