"""A feature-flag service's PostgreSQL migrations, shaped like Flipt's, without any fixture.

Why: the pair test must populate real-looking schemas on its own.  These
twelve migrations are what such a service grows through: flags, segments,
variants, rules, constraints and distributions with foreign keys, then
namespaces, an enum, JSON, uniques and checks.  No ``tests/upgrade`` folder:
every row the pairs run on is generated from the catalog.
"""

from __future__ import annotations

from collections.abc import Mapping

from tests.gitrepo import migration

#: (version, title, up, down): every migration reversible.
MIGRATIONS: tuple[tuple[int, str, str, str], ...] = (
    (
        1,
        "initial",
        """
CREATE TABLE flags (
    key varchar(255) PRIMARY KEY,
    name varchar(255) NOT NULL,
    description text NOT NULL DEFAULT '',
    enabled boolean NOT NULL DEFAULT false,
    created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE segments (
    key varchar(255) PRIMARY KEY,
    name varchar(255) NOT NULL,
    description text NOT NULL DEFAULT '',
    created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE variants (
    id varchar(255) PRIMARY KEY,
    flag_key varchar(255) NOT NULL REFERENCES flags ON DELETE CASCADE,
    key varchar(255) NOT NULL,
    name varchar(255) NOT NULL,
    description text NOT NULL DEFAULT '',
    created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT variants_flag_key_key UNIQUE (flag_key, key)
);
CREATE TABLE constraints (
    id varchar(255) PRIMARY KEY,
    segment_key varchar(255) NOT NULL REFERENCES segments ON DELETE CASCADE,
    type integer NOT NULL DEFAULT 0,
    property varchar(255) NOT NULL,
    operator varchar(255) NOT NULL,
    value text NOT NULL,
    created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE rules (
    id varchar(255) PRIMARY KEY,
    flag_key varchar(255) NOT NULL REFERENCES flags ON DELETE CASCADE,
    segment_key varchar(255) NOT NULL REFERENCES segments ON DELETE CASCADE,
    rank integer NOT NULL DEFAULT 1,
    created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE distributions (
    id varchar(255) PRIMARY KEY,
    rule_id varchar(255) NOT NULL REFERENCES rules ON DELETE CASCADE,
    variant_id varchar(255) NOT NULL REFERENCES variants ON DELETE CASCADE,
    rollout float NOT NULL DEFAULT 0,
    created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP
);
""",
        "DROP TABLE distributions, rules, constraints, variants, segments, flags;",
    ),
    (
        2,
        "segment_match_type",
        "ALTER TABLE segments ADD COLUMN match_type integer DEFAULT 0 NOT NULL;",
        "ALTER TABLE segments DROP COLUMN match_type;",
    ),
    (
        3,
        "variant_attachment",
        "ALTER TABLE variants ADD COLUMN attachment jsonb;",
        "ALTER TABLE variants DROP COLUMN attachment;",
    ),
    (
        4,
        "rollout_check",
        "ALTER TABLE distributions ADD CONSTRAINT distributions_rollout_check "
        "CHECK (rollout >= 0 AND rollout <= 100);",
        "ALTER TABLE distributions DROP CONSTRAINT distributions_rollout_check;",
    ),
    (
        5,
        "namespaces",
        """
CREATE TABLE namespaces (
    key varchar(255) PRIMARY KEY,
    name varchar(255) NOT NULL,
    description text NOT NULL DEFAULT '',
    protected boolean NOT NULL DEFAULT false,
    created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP
);
INSERT INTO namespaces (key, name, description, protected)
VALUES ('default', 'Default', 'Default namespace', true);
""",
        "DROP TABLE namespaces;",
    ),
    (
        6,
        "flag_namespace",
        "ALTER TABLE flags ADD COLUMN namespace_key varchar(255) NOT NULL DEFAULT 'default' "
        "REFERENCES namespaces ON DELETE CASCADE;",
        "ALTER TABLE flags DROP COLUMN namespace_key;",
    ),
    (
        7,
        "flag_type",
        "CREATE TYPE flag_type AS ENUM ('variant', 'boolean');\n"
        "ALTER TABLE flags ADD COLUMN type flag_type NOT NULL DEFAULT 'variant';",
        "ALTER TABLE flags DROP COLUMN type;\nDROP TYPE flag_type;",
    ),
    (
        8,
        "rollouts",
        """
CREATE TYPE rollout_type AS ENUM ('unknown', 'segment', 'threshold');
CREATE TABLE rollouts (
    id varchar(255) PRIMARY KEY,
    flag_key varchar(255) NOT NULL REFERENCES flags ON DELETE CASCADE,
    type rollout_type NOT NULL DEFAULT 'unknown',
    description text NOT NULL DEFAULT '',
    rank integer NOT NULL DEFAULT 1 CHECK (rank > 0),
    created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE rollout_thresholds (
    id varchar(255) PRIMARY KEY,
    rollout_id varchar(255) UNIQUE NOT NULL REFERENCES rollouts ON DELETE CASCADE,
    percentage float NOT NULL DEFAULT 0 CHECK (percentage BETWEEN 0 AND 100),
    value boolean NOT NULL DEFAULT false
);
""",
        "DROP TABLE rollout_thresholds, rollouts;\nDROP TYPE rollout_type;",
    ),
    (
        9,
        "constraint_description",
        "ALTER TABLE constraints ADD COLUMN description text;",
        "ALTER TABLE constraints DROP COLUMN description;",
    ),
    (
        10,
        "operator_check",
        "ALTER TABLE constraints ADD CONSTRAINT constraints_operator_check "
        "CHECK (operator IN ('eq', 'neq', 'prefix', 'suffix', 'present', 'empty')) NOT VALID;",
        "ALTER TABLE constraints DROP CONSTRAINT constraints_operator_check;",
    ),
    (
        11,
        "authentications",
        """
CREATE TABLE authentications (
    id varchar(255) PRIMARY KEY,
    method integer NOT NULL DEFAULT 0,
    client_token_hash varchar(255) UNIQUE NOT NULL,
    metadata jsonb,
    source inet,
    expires_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP
);
""",
        "DROP TABLE authentications;",
    ),
    (
        12,
        "distribution_unique",
        "CREATE UNIQUE INDEX distributions_rule_variant ON distributions (rule_id, variant_id);",
        "DROP INDEX distributions_rule_variant;",
    ),
)


def flipt_commits() -> list[tuple[str, Mapping[str, str | None]]]:
    """One commit per migration (live), ready for `tests.gitrepo.GitRepo.commit`."""
    return [
        (
            f"migration {version}: {title}",
            migration(version, title, f"-- compat: live\n{up.strip()}\n", f"{down.strip()}\n"),
        )
        for version, title, up, down in MIGRATIONS
    ]
