"""Code versions from git history, and the release records that mark what shipped.

Why one package: which CL ships which schema is read from first-parent
history in one streaming pass (cached in the git directory), and release
records are the deployed subset of that history.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rollsafe._lazy import lazy_names

if TYPE_CHECKING:
    from rollsafe.history._model import CodeVersion, FileChange, History
    from rollsafe.history._read import (
        cache_disabled,
        cache_enabled,
        read_history,
        require_folder,
    )
    from rollsafe.history._releases import (
        ReleaseRecord,
        load_records,
        parse_record,
        render_record,
        write_record,
    )

__all__ = [
    "CodeVersion",
    "FileChange",
    "History",
    "ReleaseRecord",
    "cache_disabled",
    "cache_enabled",
    "load_records",
    "parse_record",
    "read_history",
    "render_record",
    "require_folder",
    "write_record",
]

__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "CodeVersion": "._model",
        "FileChange": "._model",
        "History": "._model",
        "cache_disabled": "._read",
        "cache_enabled": "._read",
        "read_history": "._read",
        "require_folder": "._read",
        "ReleaseRecord": "._releases",
        "load_records": "._releases",
        "parse_record": "._releases",
        "render_record": "._releases",
        "write_record": "._releases",
    },
)
