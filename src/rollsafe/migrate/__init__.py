"""The migrations folder and the migrator that applies it, golang-migrate's way.

Why one package: the catalogue (file names, pairs, directives) is what the
migrator runs, and both must read a folder exactly as golang-migrate does.
The catalogue is light and read by every capability; the migrator needs
psycopg, so it is imported only when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rollsafe._lazy import lazy_names

if TYPE_CHECKING:
    from rollsafe.migrate._catalogue import (
        Catalogue,
        CatalogueWarning,
        Directives,
        Migration,
        MigrationFile,
        catalogue_from_files,
        file_patterns,
        load_catalogue,
        parse_file_name,
        read_by_catalogue,
        refuse_link,
        versions_of,
    )
    from rollsafe.migrate._migrator import Migrator, Status, lock_id
    from rollsafe.migrate._statements import one_query_refusal

__all__ = [
    "Catalogue",
    "CatalogueWarning",
    "Directives",
    "Migration",
    "MigrationFile",
    "Migrator",
    "Status",
    "catalogue_from_files",
    "file_patterns",
    "load_catalogue",
    "lock_id",
    "one_query_refusal",
    "parse_file_name",
    "read_by_catalogue",
    "refuse_link",
    "versions_of",
]

__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "Catalogue": "._catalogue",
        "CatalogueWarning": "._catalogue",
        "Directives": "._catalogue",
        "Migration": "._catalogue",
        "MigrationFile": "._catalogue",
        "catalogue_from_files": "._catalogue",
        "file_patterns": "._catalogue",
        "load_catalogue": "._catalogue",
        "parse_file_name": "._catalogue",
        "read_by_catalogue": "._catalogue",
        "refuse_link": "._catalogue",
        "versions_of": "._catalogue",
        "Migrator": "._migrator",
        "Status": "._migrator",
        "lock_id": "._migrator",
        "one_query_refusal": "._statements",
    },
)
