"""The ledger's SQLite schema, and opening a file with it (WAL, mode 0600, version checked).

In WAL mode with ``synchronous=NORMAL`` a commit survives the process being killed (not a power
cut, which a bulk import can rerun from). Tokens, passwords and headers are never stored.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from batch.errors import LedgerError

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    command TEXT NOT NULL,
    manifest_path TEXT,
    manifest_hash TEXT,
    host TEXT,
    options TEXT NOT NULL DEFAULT '{}',
    pid INTEGER,
    started_at REAL NOT NULL,
    ended_at REAL,
    exit_code INTEGER,
    counts TEXT
);
CREATE TABLE IF NOT EXISTS families (
    family_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    proband_sample TEXT NOT NULL DEFAULT '',
    row_hash TEXT NOT NULL,
    created_hash TEXT,
    case_name TEXT,
    rows TEXT,
    note TEXT,
    updated_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS steps (
    family_id TEXT NOT NULL,
    step TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    http_status INTEGER,
    error_class TEXT,
    error_message TEXT,
    case_name TEXT,
    run_id INTEGER,
    started_at REAL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (family_id, step)
) WITHOUT ROWID;
-- No index on state: every state change would pay for it, and the counts that would use it
-- scan 100,000 families in well under a second anyway.
DROP INDEX IF EXISTS steps_state;
-- A succeeded create stores its case on the family in the same statement (atomic), and
-- notes the rows' hash it was created from.
CREATE TRIGGER IF NOT EXISTS create_succeeded_update AFTER UPDATE OF state ON steps
WHEN NEW.step = 'create' AND NEW.state = 'succeeded' AND NEW.case_name IS NOT NULL
BEGIN
    UPDATE families SET case_name = NEW.case_name, created_hash = row_hash,
        updated_at = NEW.updated_at WHERE family_id = NEW.family_id;
END;
CREATE TRIGGER IF NOT EXISTS create_succeeded_insert AFTER INSERT ON steps
WHEN NEW.step = 'create' AND NEW.state = 'succeeded' AND NEW.case_name IS NOT NULL
BEGIN
    UPDATE families SET case_name = NEW.case_name, created_hash = row_hash,
        updated_at = NEW.updated_at WHERE family_id = NEW.family_id;
END;
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    dedupe_key TEXT NOT NULL UNIQUE,
    case_name TEXT NOT NULL,
    status TEXT,
    previous_status TEXT,
    status_change_date TEXT,
    received_at REAL NOT NULL,
    handled_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    failed_at REAL
);
CREATE INDEX IF NOT EXISTS events_case ON events (case_name, handled_at);
"""




def connect(path: Path, *, create: bool) -> sqlite3.Connection:
    """Open (or create, mode 0600) the ledger file at *path* with the schema in place."""
    if not create and not path.exists():
        raise LedgerError(f"no ledger at {path}: run the manifest first, or pass --ledger PATH")
    try:
        if create and not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        # autocommit (isolation_level=None): transactions are explicit, see Database.transaction
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=5000")
        conn.executescript(SCHEMA)
    except sqlite3.Error as exc:
        raise LedgerError(f"cannot open ledger {path}: {exc}") from exc
    return conn
