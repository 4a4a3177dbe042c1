"""Files rollsafe writes: whole or not at all.

Why: a run that fails half-way must leave nothing half-written (DESIGN.md,
"nothing is written when a run fails half-way"), and a reader of
DEPLOYING.md or a release record must never see a torn file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, text: str, *, exclusive: bool = False) -> None:
    """Write ``text`` to ``path`` through a temporary file, so readers never see half of it.

    With ``exclusive`` an existing file is never replaced (`FileExistsError`);
    the temporary file is hard-linked into place, which fails atomically
    when the name is taken.  A symbolic link is written through: the file it
    points at (through any chain of links, dangling or not) is replaced, in
    its own folder, and the link stays a link (a team may keep the file in
    its docs and link it where rollsafe looks).
    """
    path = Path(os.path.realpath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    temporary = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
        temporary.chmod(mode)
        if exclusive:
            os.link(temporary, path)
        else:
            temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)
