"""Versioned schema migrations, applied in order; `PRAGMA user_version` records progress.

Append new migrations; never edit one that has shipped.
"""

from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: revisions, ledger, rollouts, events
    """
    CREATE TABLE revisions (
        id TEXT PRIMARY KEY,
        accepted INTEGER NOT NULL,
        message TEXT NOT NULL,
        problems TEXT NOT NULL,
        seen_at REAL NOT NULL
    );
    CREATE TABLE ledger (
        cell TEXT NOT NULL,
        service TEXT NOT NULL,
        applied_rev TEXT,
        applied_hash TEXT,
        healthy_rev TEXT,
        good_rev TEXT,
        good_hash TEXT,
        depends_on TEXT NOT NULL DEFAULT '[]',
        updated_at REAL NOT NULL,
        PRIMARY KEY (cell, service)
    );
    CREATE TABLE cells (
        cell TEXT PRIMARY KEY,
        applied_doc TEXT,
        repair_seq INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE rollouts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        revision TEXT NOT NULL,
        base TEXT,
        state TEXT NOT NULL,
        plan TEXT NOT NULL,
        wave INTEGER NOT NULL DEFAULT 0,
        phase TEXT NOT NULL DEFAULT 'apply',
        phase_started REAL NOT NULL DEFAULT 0,
        bake_until REAL NOT NULL DEFAULT 0,
        failures INTEGER NOT NULL DEFAULT 0,
        paused INTEGER NOT NULL DEFAULT 0,
        reason TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE rollout_cells (
        rollout INTEGER NOT NULL REFERENCES rollouts(id),
        wave INTEGER NOT NULL,
        cell TEXT NOT NULL,
        step TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        updated_at REAL NOT NULL,
        PRIMARY KEY (rollout, cell)
    );
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at REAL NOT NULL,
        kind TEXT NOT NULL,
        message TEXT NOT NULL,
        cell TEXT,
        service TEXT,
        revision TEXT,
        rollout INTEGER
    );
    CREATE INDEX events_at ON events(at);
    CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    # 2: what each Kubernetes cell holds: the objects applied to it, for prune and drift
    """
    CREATE TABLE inventory (
        cell TEXT NOT NULL,
        key TEXT NOT NULL,
        rank INTEGER NOT NULL,
        hash TEXT,
        body TEXT NOT NULL,
        cluster TEXT NOT NULL,
        PRIMARY KEY (cell, key, cluster)
    );
    """,
    # 3: time a rollout observed (not wall-clock differences); what each cell was given and
    # its last good state as rendered, so a rollback and supervision never need old commits
    """
    ALTER TABLE rollouts ADD COLUMN elapsed REAL NOT NULL DEFAULT 0;
    ALTER TABLE rollouts ADD COLUMN baked REAL NOT NULL DEFAULT 0;
    ALTER TABLE ledger ADD COLUMN applied_spec TEXT;
    ALTER TABLE ledger ADD COLUMN good_spec TEXT;
    ALTER TABLE cells ADD COLUMN applied_cell TEXT;
    ALTER TABLE cells ADD COLUMN good_cell TEXT;
    """,
    # 4: Secret values are no longer kept in the inventory (secure_delete overwrites them)
    """
    UPDATE inventory SET body = json_remove(body, '$.data', '$.stringData')
    WHERE key LIKE 'v1 Secret %';
    """,
    # 5: whether cellops created each object or adopted one that was there (a takeover),
    # and then the object as it was found, so prune releases it and a rollback restores it
    """
    ALTER TABLE inventory ADD COLUMN origin TEXT NOT NULL DEFAULT 'created';
    ALTER TABLE inventory ADD COLUMN found TEXT;
    """,
    # 6: each image's last verdict (digest, signer or why it may not run), and the digest
    # each tag was resolved to when its revision was accepted (never resolved again)
    """
    CREATE TABLE image_verdicts (
        image TEXT PRIMARY KEY,
        digest TEXT,
        signer TEXT,
        reason TEXT,
        at REAL NOT NULL
    );
    CREATE TABLE resolved_tags (
        image TEXT PRIMARY KEY,
        digest TEXT NOT NULL,
        at REAL NOT NULL
    );
    """,
    # 7: the commit time of each revision (DORA lead time, commit -> healthy metrics);
    # every outgoing notification's delivery attempts; events found by kind (counters)
    """
    ALTER TABLE revisions ADD COLUMN committed_at REAL;
    CREATE TABLE notify_deliveries (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        event INTEGER NOT NULL,
        target TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        at REAL NOT NULL,
        status INTEGER,
        error TEXT NOT NULL DEFAULT '',
        delivered INTEGER NOT NULL
    );
    CREATE INDEX notify_deliveries_event ON notify_deliveries(event);
    CREATE INDEX events_kind ON events(kind, id);
    """,
    # 8: API tokens (only their SHA-256 is kept), each with a role; revoked ones kept
    """
    CREATE TABLE tokens (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        role TEXT NOT NULL,
        hash TEXT NOT NULL UNIQUE,
        created REAL NOT NULL,
        expires REAL,
        revoked REAL
    );
    """,
    # 9: the ledger's health columns indexed per cell and per service, so a /metrics
    # scrape counts them from the indexes, not rows holding rendered specs (1,000 x 50
    # ledger rows: 320 ms -> 70 ms)
    """
    CREATE INDEX ledger_by_cell ON ledger(cell, applied_rev, applied_hash, healthy_rev);
    CREATE INDEX ledger_by_service ON ledger(service, applied_hash, applied_rev, healthy_rev);
    """,
    # 10: the ledger without its rendered specs, from one index (the API's read models:
    # `ledger_brief` over 1,000 x 50 rows reads the index, not 130 MB of row pages)
    """
    CREATE INDEX ledger_brief ON ledger(
        cell, service, applied_rev, applied_hash, healthy_rev, good_rev, good_hash, updated_at
    );
    """,
    # 11: events found by cell, service or rollout newest first (the API's and `cellops
    # events`' filters) from an index, not a scan of every event the fleet ever had
    """
    CREATE INDEX events_cell ON events(cell, id);
    CREATE INDEX events_service ON events(service, id);
    CREATE INDEX events_rollout ON events(rollout, id);
    """,
    # 12: the dashboard's sign-in sessions: a random id in the browser's cookie, only its
    # SHA-256 kept here, with the token it stands for (a revoked token ends its sessions)
    """
    CREATE TABLE sessions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        hash TEXT NOT NULL UNIQUE,
        token INTEGER NOT NULL REFERENCES tokens(id),
        created REAL NOT NULL,
        expires REAL NOT NULL
    );
    CREATE INDEX sessions_token ON sessions(token);
    """,
]
