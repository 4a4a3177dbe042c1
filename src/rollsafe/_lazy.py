"""Names of a package imported on first use (PEP 562).

Why: the console script imports ``rollsafe`` for every command, and most
commands need neither the database stack (psycopg) nor PostgreSQL's parser
(pglast).  A package's ``__init__`` lists its public names and where they
live; the module behind a name is imported only when the name is used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_names(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``, whose public names live in ``exports``.

    ``exports`` maps a public name to the module (relative to ``package``,
    e.g. ``"._catalogue"``) that defines it.
    """
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *exports})

    return __getattr__, __dir__
