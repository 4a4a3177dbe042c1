"""The state cache on a real PostgreSQL: one CI job per pair restores its start state.

Why: a matrix of one job per pair must cost O(N), and a job's verdict must
never depend on which jobs ran before it: a state is used only when
everything that made it is unchanged and the file is whole; otherwise the
chain is walked and the state saved again.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rollsafe.config import Config
from rollsafe.engines import Server
from rollsafe.pairs import PairsRun, PairSuite
from rollsafe.pairs._states import ChainState, StateCache
from tests.gitrepo import GitRepo, migration
from tests.test_pairs import make_repo, statuses

pytestmark = pytest.mark.db

FOURTH = (
    "notes",
    {
        **migration(
            4,
            "notes",
            "-- compat: live\nALTER TABLE items ADD COLUMN note text;\n",
            "ALTER TABLE items DROP COLUMN note;\n",
        ),
        "tests/upgrade/4/seed.sql": "UPDATE items SET note = 'n';\n",
    },
)


def job(config: Config, server: Server, folder: Path, pair_id: str) -> PairsRun:
    """One CI job: a new suite (as a new process would have) that runs one pair."""
    with PairSuite(config, server=server, state_cache=folder) as suite:
        (pair,) = [p for p in suite.pairs if p.id == pair_id]
        suite.run(pair)
        return suite.report()


def test_a_job_restores_the_state_an_earlier_job_saved(tmp_path: Path, pg_server: Server) -> None:
    config = make_repo(tmp_path, [FOURTH])
    folder = tmp_path / "states"
    cold = job(config, pg_server, folder, "2->3")
    # Cold: walked 1->2 silently (reach 1, then up, down, up), then ran 2->3.
    assert cold.counters.restores == 0
    assert cold.counters.migrations == 1 + 3 + 3
    # It saved its start state and the state it ended in.
    assert len(list(folder.glob("state-*.dump"))) == 2
    warm = job(config, pg_server, folder, "2->3")
    assert warm.counters.restores == 1
    assert warm.counters.migrations == 3
    assert statuses(warm.results[0]) == statuses(cold.results[0])
    assert warm.results[0].status == "passed"
    # The next pair's job starts from the state the first job ended in.
    following = job(config, pg_server, folder, "3->4")
    assert following.counters.restores == 1
    assert following.counters.migrations == 3
    assert following.results[0].status == "passed"


def test_a_changed_seed_or_migration_is_not_restored(tmp_path: Path, pg_server: Server) -> None:
    config = make_repo(tmp_path, [FOURTH])
    folder = tmp_path / "states"
    job(config, pg_server, folder, "3->4")
    assert job(config, pg_server, folder, "3->4").counters.restores == 1
    repo = GitRepo(config.repo)
    seed = config.repo / "tests/upgrade/1/seed.sql"
    seed.write_text(seed.read_text() + "INSERT INTO items (name) VALUES ('one more');\n")
    changed = job(config, pg_server, folder, "3->4")
    assert changed.counters.restores == 0
    assert changed.counters.migrations == 1 + 3 + 3 + 3
    up = "migrations/2_color.up.sql"
    repo.commit("edit", {up: (config.repo / up).read_text() + "-- a comment changes the file\n"})
    assert job(config, pg_server, folder, "3->4").counters.restores == 0
    assert job(config, pg_server, folder, "3->4").counters.restores == 1


def test_a_later_seed_leaves_earlier_states_valid(tmp_path: Path, pg_server: Server) -> None:
    config = make_repo(tmp_path, [FOURTH])
    folder = tmp_path / "states"
    job(config, pg_server, folder, "2->3")  # saves the states before 2->3 and before 3->4
    seed = config.repo / "tests/upgrade/3/seed.sql"
    seed.write_text(seed.read_text() + "INSERT INTO items (name) VALUES ('later');\n")
    later = job(config, pg_server, folder, "3->4")
    # The state before 3->4 holds version 3's seeds: stale.  The one before 2->3 does not.
    assert later.counters.restores == 1
    assert later.counters.migrations == 3 + 3


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage dump"])
def test_a_damaged_state_is_rebuilt(tmp_path: Path, pg_server: Server, damage: str) -> None:
    config = make_repo(tmp_path, [FOURTH])
    folder = tmp_path / "states"
    cold = job(config, pg_server, folder, "3->4")
    files = sorted(folder.glob("state-*.dump"))
    for path in files:
        data = path.read_bytes()
        if damage == "flip":
            # A changed row that would restore without complaint: only the checksum sees it.
            assert b"item-1" in data
            path.write_bytes(data.replace(b"item-1", b"itex-1"))
        elif damage == "truncate":
            path.write_bytes(data[: len(data) // 2])
    if damage == "garbage dump":
        cache = StateCache(folder)
        for path in files:
            key = path.name.removeprefix("state-").removesuffix(".dump")
            # A whole file with a valid checksum whose dump the server refuses.
            loaded = [k for k in _keys(config, pg_server) if k.startswith(key)]
            cache.save(loaded[0], ChainState(at=3), b"not a dump")
    rebuilt = job(config, pg_server, folder, "3->4")
    assert rebuilt.counters.restores == 0
    assert rebuilt.counters.migrations == cold.counters.migrations
    assert statuses(rebuilt.results[0]) == statuses(cold.results[0])
    # Saved again, whole this time.
    assert job(config, pg_server, folder, "3->4").counters.restores == 1


def _keys(config: Config, server: Server) -> list[str]:
    from rollsafe.pairs._states import base_key, state_keys

    with PairSuite(config, server=server, state_cache=False) as suite:
        base = base_key(
            engine=server.identity(),
            migrations_table=config.migrations_table,
            extra={"seed_rows": config.seed_rows},
        )
        return state_keys(base, suite.catalogue, suite.pairs, suite.fixtures)


def test_without_a_cache_nothing_is_saved(tmp_path: Path, pg_server: Server) -> None:
    config = make_repo(tmp_path, [FOURTH])
    with PairSuite(config, server=pg_server, state_cache=False) as suite:
        suite.run(suite.pairs[-1])
    assert not list(config.repo.joinpath(".git").rglob("state-*.dump"))


def test_only_the_most_recently_used_states_are_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rollsafe.pairs import _states

    monkeypatch.setattr(_states, "KEEP", 2)
    cache = StateCache(tmp_path)
    keys = [f"{index}" + "0" * 63 for index in range(3)]
    for index, key in enumerate(keys):
        assert cache.save(key, ChainState(at=index), b"dump")
        os.utime(cache.path(key), (index, index))  # saved in this order, long ago
    assert [cache.has(key) for key in keys] == [False, True, True]
    loaded = cache.load(keys[1])
    assert loaded == (ChainState(at=1), b"dump")
