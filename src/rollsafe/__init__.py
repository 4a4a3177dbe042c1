"""rollsafe: which code version ships which schema, and is every upgrade step safe.

The public API is listed in ``__all__``; everything in a module whose name
starts with ``_`` is private and may change without notice.
"""

from __future__ import annotations

from rollsafe.catalogue import Catalogue, Migration, catalogue_from_files, load_catalogue
from rollsafe.config import Config, load_config
from rollsafe.errors import RollsafeError

__all__ = [
    "Catalogue",
    "Config",
    "Migration",
    "RollsafeError",
    "catalogue_from_files",
    "load_catalogue",
    "load_config",
]

__version__ = "0.1.0"
