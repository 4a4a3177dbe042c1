"""rollsafe's invoke collection, so a repository's tasks.py reuses it in two lines.

Why: release engineers type ``invoke release-table``.  Each task is built
from the same command description as the ``rollsafe`` sub-command
(`rollsafe.commands._spec`): the same flags with the same help, the same
checks, the same handler and the same error line and exit code, so there
is one behaviour to test.  Every task also takes ``--repo`` and a flag per
``[tool.rollsafe]`` key, so it runs against any repository without editing
it.

In another repository::

    # tasks.py
    from rollsafe.invoke_tasks import namespace
"""

from __future__ import annotations

import inspect
import keyword
from typing import Any

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import Task

from rollsafe.commands._spec import (
    COMMANDS,
    COMMON,
    CONFIG,
    Command,
    Flag,
    UsageError,
    execute,
    parse_values,
)
from rollsafe.errors import report


def _parameter(flag: Flag) -> str:
    """The task parameter of ``flag``; invoke strips a trailing ``_`` (``from_`` is ``--from``)."""
    name = flag.name.replace("-", "_")
    return name + "_" if keyword.iskeyword(name) else name


def task_of(command: Command) -> Task[Any]:
    """The invoke task of ``command``: its flags, then the ones every command takes."""
    flags = (*command.flags, *COMMON, *CONFIG)
    attrs = {_parameter(flag): flag.attr for flag in flags}

    def body(c: Context, **kwargs: Any) -> None:
        values = {attrs[name]: value for name, value in kwargs.items()}
        try:
            args = parse_values(command, values)
        except UsageError as exc:
            code = report(exc)
        else:
            code = execute(command, args)
        if code:
            raise Exit(code=code)

    context = inspect.Parameter("c", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    parameters = [
        inspect.Parameter(
            _parameter(flag),
            inspect.Parameter.KEYWORD_ONLY,
            default=False if flag.switch else None,
        )
        for flag in flags
    ]
    body.__signature__ = inspect.Signature([context, *parameters])  # type: ignore[attr-defined]
    body.__name__ = command.name.replace("-", "_")
    body.__doc__ = command.task
    return Task(
        body,
        name=command.name,
        help={_parameter(flag): flag.help for flag in flags},
        positional=[_parameter(flag) for flag in command.flags if flag.positional],
        # No generated one-letter flags: a dozen of them would only confuse.
        auto_shortflags=False,
    )


namespace = Collection(*(task_of(command) for command in COMMANDS if command.task is not None))
ns = namespace
