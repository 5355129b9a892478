"""The history's database file and its schema: where it lives, how it is
opened, the numbered upgrade steps, and which runs were left unfinished by
a process that is gone.

The schema is versioned with ``PRAGMA user_version``; ``MIGRATIONS`` lists the
named upgrade steps, applied in order in one transaction. Never edit a step
that has shipped: add a new one.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import psutil

from workbench.engine import paths
from workbench.engine.errors import WorkbenchError

FILE_NAME = "history.sqlite"
#: How long a write waits for another program's transaction before giving up.
BUSY_TIMEOUT_S = 2.0
# Two start times of one process, read by two processes, agree to the clock
# tick; a different process that reused the pid started at another time.
_START_TOLERANCE_S = 0.5


class StoreError(WorkbenchError, RuntimeError):
    """The history cannot be opened, read or written; the message is for the user."""


@dataclass(frozen=True)
class Migration:
    """One named upgrade step; ``version`` is the schema it produces."""

    version: int
    name: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "create runs and panels",
        (
            """CREATE TABLE runs (
                id INTEGER PRIMARY KEY,
                started_at REAL NOT NULL,
                finished_at REAL,
                updated_at REAL NOT NULL,
                state TEXT NOT NULL,
                source TEXT NOT NULL,
                prompt TEXT NOT NULL,
                system TEXT NOT NULL,
                mode TEXT NOT NULL,
                schedule TEXT NOT NULL,
                threads INTEGER NOT NULL,
                params TEXT NOT NULL,
                pid INTEGER,
                pid_started REAL
            )""",
            """CREATE TABLE panels (
                run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
                position INTEGER NOT NULL,
                model_id TEXT NOT NULL,
                model_title TEXT NOT NULL,
                model_path TEXT,
                model_sha256 TEXT,
                model_fingerprint TEXT,
                model_size INTEGER,
                model_mtime REAL,
                architecture TEXT NOT NULL,
                n_params INTEGER,
                params_label TEXT NOT NULL,
                quant TEXT NOT NULL,
                n_ctx_train INTEGER,
                kind TEXT NOT NULL,
                n_ctx INTEGER,
                params TEXT NOT NULL,
                overrides TEXT NOT NULL,
                state TEXT NOT NULL,
                text TEXT NOT NULL DEFAULT '',
                stop_reason TEXT,
                error TEXT,
                stats TEXT,
                started_at REAL,
                finished_at REAL,
                updated_at REAL,
                PRIMARY KEY (run_id, position)
            )""",
            "CREATE INDEX runs_state ON runs(state)",
        ),
    ),
    Migration(
        2,
        "add notes, and indexes for the history list",
        (
            # Per-panel notes from the engine (clipped max tokens, template
            # fallbacks), as a JSON list; and the user's own note on a run.
            "ALTER TABLE panels ADD COLUMN notes TEXT NOT NULL DEFAULT '[]'",
            "ALTER TABLE runs ADD COLUMN note TEXT NOT NULL DEFAULT ''",
            "CREATE INDEX runs_started ON runs(started_at)",
            "CREATE INDEX panels_model ON panels(model_id)",
        ),
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1].version

PANEL_COLUMNS = (
    "run_id, position, model_id, model_title, model_path, model_sha256, model_fingerprint, "
    "model_size, model_mtime, architecture, n_params, params_label, quant, n_ctx_train, kind, "
    "n_ctx, params, overrides, state, text, stop_reason, error, stats, started_at, finished_at, "
    "updated_at, notes"
)


def history_path() -> Path:
    """Where the history lives (``WORKBENCH_HOME`` moves it)."""
    return paths.data_dir() / FILE_NAME


def process_identity() -> tuple[int, float]:
    """This process's pid and start time, which together name it uniquely."""
    proc = psutil.Process()
    return proc.pid, proc.create_time()


def process_alive(pid: int | None, started: float | None) -> bool:
    """Whether the process that recorded a run still runs (not a reused pid)."""
    if pid is None or started is None:
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return abs(proc.create_time() - started) < _START_TOLERANCE_S
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        # Another user's process cannot be ours.
        return False


def describe_error(path: Path, exc: sqlite3.Error) -> str:
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        return f"{path} is locked by another program ({text}); try again when it is done"
    if isinstance(exc, sqlite3.OperationalError) and "unable to open" in text:
        return f"cannot open {path} ({text})"
    if type(exc) is sqlite3.DatabaseError or "malformed" in text:
        return (
            f"{path} is damaged or not a history database ({text}); "
            "move it aside to start a new history"
        )
    return f"{path}: {text}"


def connect(path: Path, busy_timeout: float) -> sqlite3.Connection:
    """The database at ``path`` (created if missing), in WAL mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Prompts are private: the file (and SQLite's -wal and -shm
        # files, which copy its mode) is for the user alone.
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    conn = sqlite3.connect(
        path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
    )
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
    except BaseException:
        conn.close()
        raise
    return conn


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the schema up to ``SCHEMA_VERSION``, in the caller's transaction."""
    current = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if current > SCHEMA_VERSION:
        raise StoreError(
            f"{path} was written by a newer version of workbench "
            f"(schema {current}, this one knows {SCHEMA_VERSION}); upgrade workbench"
        )
    for step in MIGRATIONS:
        if step.version <= current:
            continue
        try:
            for statement in step.statements:
                conn.execute(statement)
        except sqlite3.Error as exc:
            raise StoreError(
                f"{path}: upgrade step {step.version} ({step.name}) failed: {exc}"
            ) from None
        # user_version is part of the transaction: a failed upgrade leaves it.
        conn.execute(f"PRAGMA user_version = {step.version:d}")


def mark_interrupted(conn: sqlite3.Connection) -> list[int]:
    """Runs still "running" whose process is gone become "interrupted"; their ids."""
    rows = conn.execute(
        "SELECT id, pid, pid_started, updated_at FROM runs WHERE state = 'running'"
    ).fetchall()
    found = []
    for run_id, pid, started, updated in rows:
        if process_alive(pid, started):
            continue
        conn.execute(
            "UPDATE runs SET state = 'interrupted', finished_at = ? WHERE id = ?",
            (updated, run_id),
        )
        conn.execute(
            "UPDATE panels SET state = 'interrupted', finished_at = COALESCE(updated_at, ?) "
            "WHERE run_id = ? AND state IN ('waiting', 'running')",
            (updated, run_id),
        )
        found.append(int(run_id))
    return found
