"""The history: every run, its settings and what each model produced, in SQLite.

One file, ``history.sqlite`` in the data directory (``WORKBENCH_HOME`` moves
it). The database runs in WAL mode with ``synchronous=NORMAL``: a committed
write survives the process being killed, and readers never wait for the
writer. A run in progress is saved as it streams (see ``recorder.py``), with
the recording process's pid and start time; when the store is opened, a run
still marked "running" whose process is gone becomes "interrupted", keeping
the text saved so far.

The records (``Run``, ``Panel``, ``ModelRecord``) are in ``records.py`` and
the file and its schema in ``schema.py``; their public names are importable
from here, the one module callers need.

Nothing here raises ``sqlite3`` errors to callers: every failure becomes a
``StoreError`` whose message says what is wrong and what to do.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

from workbench.engine.history.records import (
    OPEN_STATES,
    PANEL_STATES,
    RUN_STATES,
    ModelRecord,
    Panel,
    PanelState,
    Run,
    RunState,
    RunSummary,
    first_line,
    json_dict,
    panel_from_row,
)
from workbench.engine.history.schema import (
    BUSY_TIMEOUT_S,
    FILE_NAME,
    MIGRATIONS,
    PANEL_COLUMNS,
    SCHEMA_VERSION,
    StoreError,
    connect,
    describe_error,
    history_path,
    mark_interrupted,
    migrate,
    process_identity,
)
from workbench.engine.running.protocol import Stats

__all__ = [
    "BUSY_TIMEOUT_S",
    "FILE_NAME",
    "MIGRATIONS",
    "OPEN_STATES",
    "PANEL_STATES",
    "RUN_STATES",
    "SCHEMA_VERSION",
    "ModelRecord",
    "Panel",
    "PanelState",
    "Run",
    "RunState",
    "RunSummary",
    "Store",
    "StoreError",
    "first_line",
    "history_path",
    "open_store_or_none",
    "process_identity",
]


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class Store:
    """The history database. Safe to share between threads (one lock).

    Open with ``Store.open()`` (or ``open_store_or_none``); every method may
    raise ``StoreError``.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self._lock = threading.RLock()
        #: Runs found interrupted when this store was opened.
        self.interrupted: list[int] = []

    @classmethod
    def open(cls, path: Path | None = None, *, busy_timeout: float = BUSY_TIMEOUT_S) -> Store:
        """Open (creating or upgrading) the history; StoreError if it cannot be used."""
        path = path or history_path()
        conn: sqlite3.Connection | None = None
        try:
            conn = connect(path, busy_timeout)
            store = cls(conn, path)
            # One write transaction: it fails at once (after the busy timeout)
            # when another program holds the database, rather than later.
            with store._transaction():
                migrate(conn, path)
                store.interrupted = mark_interrupted(conn)
            return store
        except OSError as exc:
            if conn is not None:
                conn.close()
            raise StoreError(f"cannot create {path} ({exc.strerror or exc})") from None
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            raise StoreError(describe_error(path, exc)) from None
        except StoreError:
            if conn is not None:
                conn.close()
            raise

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise StoreError(describe_error(self.path, exc)) from None

    @property
    def version(self) -> int:
        with self._lock, self._errors():
            return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    # -- writing --------------------------------------------------------------

    def create_run(
        self, run: Run, *, pid: int | None = None, pid_started: float | None = None
    ) -> int:
        """Store a new run and its panels; returns its id.

        A recorder passes its process identity so that the run can be found
        interrupted if the process dies before ``finish_run``.
        """
        with self._errors(), self._transaction() as conn:
            cur = conn.execute(
                "INSERT INTO runs (started_at, finished_at, updated_at, state, source, prompt, "
                "system, mode, schedule, threads, params, pid, pid_started, note) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run.started_at,
                    run.finished_at,
                    run.finished_at or run.started_at,
                    run.state,
                    run.source,
                    run.prompt,
                    run.system,
                    run.mode,
                    run.schedule,
                    run.threads,
                    json.dumps(run.params),
                    pid,
                    pid_started,
                    run.note,
                ),
            )
            run_id = int(cast(int, cur.lastrowid))
            marks = ", ".join("?" * len(PANEL_COLUMNS.split(",")))
            for panel in run.panels:
                m = panel.model
                conn.execute(
                    f"INSERT INTO panels ({PANEL_COLUMNS}) VALUES ({marks})",
                    (
                        run_id,
                        panel.position,
                        m.id,
                        m.title,
                        m.path,
                        m.sha256,
                        m.fingerprint,
                        m.size,
                        m.mtime,
                        m.architecture,
                        m.n_params,
                        m.params_label,
                        m.quant,
                        m.n_ctx_train,
                        m.kind,
                        panel.n_ctx,
                        json.dumps(panel.params),
                        json.dumps(panel.overrides),
                        panel.state,
                        panel.text,
                        panel.stop_reason,
                        panel.error,
                        json.dumps(panel.stats.to_dict()) if panel.stats else None,
                        panel.started_at,
                        panel.finished_at,
                        panel.finished_at or panel.started_at,
                        json.dumps(panel.notes),
                    ),
                )
            return run_id

    def import_run(self, run: Run) -> int:
        """Store a complete run (from ``export.from_json``) under a new id.

        A run exported while it was still going is imported as interrupted:
        nothing will ever finish it.
        """
        if run.state == "running":
            ended = run.finished_at or run.started_at
            panels = [
                pl if pl.ended else dataclasses.replace(pl, state="interrupted")
                for pl in run.panels
            ]
            run = dataclasses.replace(run, state="interrupted", finished_at=ended, panels=panels)
        return self.create_run(run)

    def update_panel(
        self,
        run_id: int,
        position: int,
        *,
        append: str = "",
        updated_at: float,
        state: PanelState | None = None,
        n_ctx: int | None = None,
        stop_reason: str | None = None,
        error: str | None = None,
        stats: Stats | None = None,
        notes: Sequence[str] | None = None,
        started_at: float | None = None,
        finished_at: float | None = None,
    ) -> None:
        """Append streamed text to a panel and set what changed (None: unchanged)."""
        sets = ["updated_at = ?"]
        values: list[Any] = [updated_at]
        if append:
            sets.append("text = text || ?")
            values.append(append)
        changes: dict[str, Any] = {
            "state": state,
            "n_ctx": n_ctx,
            "stop_reason": stop_reason,
            "error": error,
            "stats": json.dumps(stats.to_dict()) if stats is not None else None,
            "notes": json.dumps(list(notes)) if notes is not None else None,
            "started_at": started_at,
            "finished_at": finished_at,
        }
        for column, value in changes.items():
            if value is not None:
                sets.append(f"{column} = ?")
                values.append(value)
        with self._errors(), self._transaction() as conn:
            conn.execute(
                f"UPDATE panels SET {', '.join(sets)} WHERE run_id = ? AND position = ?",
                (*values, run_id, position),
            )
            conn.execute("UPDATE runs SET updated_at = ? WHERE id = ?", (updated_at, run_id))

    def finish_run(
        self, run_id: int, *, finished_at: float, unfinished: PanelState = "interrupted"
    ) -> None:
        """Mark a run finished; panels that never ended get ``unfinished``."""
        with self._errors(), self._transaction() as conn:
            conn.execute(
                "UPDATE runs SET state = 'finished', finished_at = ?, updated_at = ? WHERE id = ?",
                (finished_at, finished_at, run_id),
            )
            conn.execute(
                "UPDATE panels SET state = ?, finished_at = ?, updated_at = ? "
                "WHERE run_id = ? AND state IN ('waiting', 'running')",
                (unfinished, finished_at, finished_at, run_id),
            )

    def set_note(self, run_id: int, note: str) -> None:
        """The user's own remark about a run."""
        with self._errors(), self._transaction() as conn:
            conn.execute("UPDATE runs SET note = ? WHERE id = ?", (note, run_id))

    def delete_run(self, run_id: int) -> bool:
        with self._errors(), self._transaction() as conn:
            return conn.execute("DELETE FROM runs WHERE id = ?", (run_id,)).rowcount > 0

    # -- reading --------------------------------------------------------------

    def list_runs(
        self,
        *,
        search: str | None = None,
        model: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[RunSummary]:
        """Runs, newest first.

        ``search`` finds text (case-insensitive for ASCII) in the prompt, the
        system prompt or any completion; ``model`` keeps runs with a model
        whose id starts with it or whose name contains it.
        """
        where: list[str] = []
        args: list[Any] = []
        if search:
            pattern = f"%{_like(search)}%"
            where.append(
                "(r.prompt LIKE ? ESCAPE '\\' OR r.system LIKE ? ESCAPE '\\' OR EXISTS "
                "(SELECT 1 FROM panels s WHERE s.run_id = r.id AND s.text LIKE ? ESCAPE '\\'))"
            )
            args += [pattern, pattern, pattern]
        if model:
            where.append(
                "EXISTS (SELECT 1 FROM panels m WHERE m.run_id = r.id AND "
                "(m.model_id LIKE ? ESCAPE '\\' OR m.model_title LIKE ? ESCAPE '\\'))"
            )
            args += [f"{_like(model)}%", f"%{_like(model)}%"]
        sql = (
            "SELECT r.id, r.started_at, r.finished_at, r.state, r.source, r.mode, "
            "substr(r.prompt, 1, 2000) FROM runs r"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY r.started_at DESC, r.id DESC LIMIT ? OFFSET ?"
        )
        with self._lock, self._errors():
            rows = self._conn.execute(sql, (*args, max(0, limit), max(0, offset))).fetchall()
            ids = [row[0] for row in rows]
            panels: dict[int, list[tuple[str, str]]] = {i: [] for i in ids}
            if ids:
                marks = ", ".join("?" * len(ids))
                for run_id, model_id, state in self._conn.execute(
                    f"SELECT run_id, model_id, state FROM panels WHERE run_id IN ({marks}) "
                    "ORDER BY run_id, position",
                    ids,
                ):
                    panels[run_id].append((model_id, state))
        return [
            RunSummary(
                id=run_id,
                started_at=started,
                finished_at=finished,
                state=cast(RunState, state),
                source=source,
                mode=mode,
                title=first_line(prompt),
                models=[m for m, _ in panels[run_id]],
                states=[cast(PanelState, s) for _, s in panels[run_id]],
            )
            for run_id, started, finished, state, source, mode, prompt in rows
        ]

    def latest_run_id(self) -> int | None:
        runs = self.list_runs(limit=1)
        return runs[0].id if runs else None

    def get_run(self, run_id: int) -> Run | None:
        """A whole run with its panels, or None if there is no such run."""
        with self._lock, self._errors():
            row = self._conn.execute(
                "SELECT id, started_at, finished_at, state, source, prompt, system, mode, "
                "schedule, threads, params, note FROM runs WHERE id = ?",
                (run_id,),
            ).fetchone()
            if row is None:
                return None
            panel_rows = self._conn.execute(
                f"SELECT {PANEL_COLUMNS} FROM panels WHERE run_id = ? ORDER BY position",
                (run_id,),
            ).fetchall()
        (rid, started, finished, state, source, prompt, system, mode, schedule, threads,
         params, note) = row  # fmt: skip
        return Run(
            id=rid,
            started_at=started,
            finished_at=finished,
            state=cast(RunState, state),
            source=source,
            prompt=prompt,
            system=system,
            mode=mode,
            schedule=schedule,
            threads=threads,
            params=json_dict(params),
            note=note,
            panels=[panel_from_row(r) for r in panel_rows],
        )


def open_store_or_none(
    warn: Callable[[str], None], path: Path | None = None, *, busy_timeout: float = BUSY_TIMEOUT_S
) -> Store | None:
    """The history, or None after ``warn(reason)`` when it cannot be used.

    The caller shows the reason as "history off: <reason>" and carries on.
    """
    try:
        return Store.open(path, busy_timeout=busy_timeout)
    except StoreError as exc:
        warn(str(exc))
        return None
