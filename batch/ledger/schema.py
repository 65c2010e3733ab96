"""The ledger's SQLite schema, and opening a file with it (WAL, mode 0600, version checked,
older versions migrated, foreign files refused untouched).

In WAL mode with ``synchronous=NORMAL`` a commit survives the process being killed (not a power
cut, which a bulk import can rerun from). Tokens, passwords and headers are never stored.

Versions: 1, the first; 2 adds ``binding`` (the server a ledger belongs to), filled from the
host of the last run; 3 adds ``steps.server_started_at`` (the server's clock when a step was
first sent, from its ``Date`` header: what tells a lost create's case from an older one); 4 adds
``origins`` (whether each case was created by a run or found on the server and adopted; a case
recorded before version 4 has no origin: not known); 5 adds ``unread`` (webhook bodies the
listener could not read, the newest few).
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from batch.errors import LedgerError
from batch.ledger.files import ledger_error, prepare, private
from batch.text import quoted

SCHEMA_VERSION = 5

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
    server_started_at REAL,
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
-- How a family's case came to the ledger: created by a run (0) or adopted (1). A table of its
-- own, so that making it is idempotent (no ALTER TABLE on a half-made ledger).
CREATE TABLE IF NOT EXISTS origins (
    family_id TEXT PRIMARY KEY,
    case_name TEXT NOT NULL,
    adopted INTEGER NOT NULL
) WITHOUT ROWID;
-- Authenticated webhook bodies in which no case was found: the newest few, for a person to
-- read; AUTOINCREMENT so that the largest id counts every one ever kept.
CREATE TABLE IF NOT EXISTS unread (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at REAL NOT NULL,
    content_type TEXT,
    header_names TEXT,
    reason TEXT NOT NULL,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS binding (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    host TEXT NOT NULL,
    account TEXT,
    bound_at REAL NOT NULL
);
"""

#: What takes a ledger of version N to N + 1 (after SCHEMA has added what is missing).
MIGRATIONS = {
    1: """
INSERT OR IGNORE INTO binding (id, host, account, bound_at)
    SELECT 1, host, NULL, started_at FROM runs WHERE host IS NOT NULL ORDER BY id DESC LIMIT 1;
""",
    2: "ALTER TABLE steps ADD COLUMN server_started_at REAL;",
    3: "",  # origins: made by SCHEMA; the cases recorded before have no origin (not known)
    4: "",  # the unread table: made by SCHEMA, nothing to fill
}
#: Columns a migration adds, so that it is skipped where the column is already there (a file
#: whose first open stopped after the tables were made, before its version was written).
_ADDS = {2: ("steps", "server_started_at")}
#: The tables every ledger has had since version 1.
TABLES = frozenset({"meta", "runs", "families", "steps"})


def connect(path: Path, *, create: bool) -> sqlite3.Connection:
    """Open (or create, mode 0600) the ledger file at *path* with the schema in place.

    ``LedgerError`` naming the file for a file that is not SQLite, a SQLite database that is
    not a ledger, and a ledger of a newer or unknown version; none of them is changed.
    """
    prepare(path, create=create)
    try:
        # autocommit (isolation_level=None): transactions are explicit, see Database.transaction
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            _set_up(conn, path)
        except BaseException:
            conn.close()
            raise
    except sqlite3.Error as exc:
        raise ledger_error(f"cannot open ledger {path}: {exc}", exc) from exc
    # only now, once it is known to be a ledger (another program's database keeps its mode);
    # the -wal and -shm files SQLite has just made, and the file a link may have led SQLite to
    private(path)
    return conn


def _set_up(conn: sqlite3.Connection, path: Path) -> None:
    conn.execute("PRAGMA busy_timeout=5000")
    try:
        found = version(conn, path)  # read only: a foreign file is refused unchanged
    except sqlite3.OperationalError:
        raise  # busy, locked, cannot open: the file may be fine
    except sqlite3.DatabaseError as exc:
        raise LedgerError(
            f"{path} cannot be read as a ledger ({exc}); it was left as it is. Pass another "
            "--ledger PATH, or move that file away."
        ) from None
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    if found == SCHEMA_VERSION:
        conn.executescript(SCHEMA)  # no write unless something is missing: readers stay readers
        return
    steps = [MIGRATIONS[v] for v in range(found or SCHEMA_VERSION, SCHEMA_VERSION)
             if not _has_column(conn, *_ADDS.get(v, ("", "")))]
    # one transaction: a ledger is made or migrated whole, or not at all
    conn.executescript(
        "BEGIN IMMEDIATE;" + SCHEMA + "".join(steps)
        + f"INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', '{SCHEMA_VERSION}');"
        + "COMMIT;"
    )


def _has_column(conn: sqlite3.Connection, table: str, column: str) -> bool:
    if not table:
        return False
    return any(row[1] == column for row in conn.execute(f"PRAGMA table_info({table})"))


def version(conn: sqlite3.Connection, path: Path) -> int | None:
    """The schema version of the database open on *conn*; None for an empty one."""
    listed = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    tables = {str(row[0]) for row in listed}
    if not tables:
        return None
    if not tables >= TABLES:
        raise LedgerError(
            f"{path} is a SQLite database but not an emg-batch ledger; it was left as it is. "
            "Pass another --ledger PATH, or move that file away."
        )
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if row is None:
        return 1  # the tables were made, the version not yet written: the first version did so
    text = str(row[0]).strip()
    if not re.fullmatch(r"[1-9][0-9]{0,8}", text):
        raise LedgerError(
            f"{path} has a schema_version of {quoted(text)}, not a number: it was not written "
            "by emg-batch. Pass another --ledger PATH, or move that file away."
        )
    if int(text) > SCHEMA_VERSION:
        raise LedgerError(
            f"{path} has ledger schema {text}; this emg-batch reads {SCHEMA_VERSION}. "
            "Use the emg-batch version that wrote it, or start over with a new --ledger."
        )
    return int(text)
