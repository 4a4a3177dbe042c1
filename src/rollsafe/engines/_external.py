"""The external engine: databases on a cluster named by ``ROLLSAFE_DATABASE_URL``.

Why: many CI runners can share one real cluster; each database gets a
random suffix and is dropped afterwards.
"""

from __future__ import annotations

import contextlib
import os

from rollsafe._db import connect, flavor_of, parse_target
from rollsafe.engines._base import URL_ENV, Database, EngineKind, _SqlServer
from rollsafe.engines._cockroach import check_version
from rollsafe.errors import DatabaseError, EngineUnavailable


class ExternalServer(_SqlServer):
    """A cluster someone else runs: unique names, and everything created is dropped."""

    kind: EngineKind = "external"
    suffix_names = True

    def close(self) -> None:
        for name in sorted(self._owned):
            with contextlib.suppress(DatabaseError):
                self.drop(Database(name=name, dsn=""))
        super().close()


def _attach_external() -> ExternalServer:
    url = os.environ.get(URL_ENV, "").strip()
    if not url:
        raise EngineUnavailable(
            f"engine `external` needs {URL_ENV}",
            fix=f"export {URL_ENV}=postgresql://USER:PASSWORD@HOST/DB (a role with CREATEDB)",
        )
    target = parse_target(url)
    with connect(target) as conn:
        flavor = flavor_of(conn)
        report = conn.pgconn.parameter_status(b"crdb_version")
    if flavor == "cockroach":
        check_version(report.decode() if report else None, where=target.shown)
    return ExternalServer(target.dsn, flavor=flavor)
