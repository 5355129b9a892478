"""The history: every run, its settings and what each model produced, in SQLite.

One file, ``history.sqlite`` in the data directory (``WORKBENCH_HOME`` moves
it). The database runs in WAL mode with ``synchronous=NORMAL``: a committed
write survives the process being killed, and readers never wait for the
writer. A run in progress is saved as it streams (see ``recorder.py``), with
the recording process's pid and start time; when the store is opened, a run
still marked "running" whose process is gone becomes "interrupted", keeping
the text saved so far.

The schema is versioned with ``PRAGMA user_version``; ``MIGRATIONS`` lists the
named upgrade steps, applied in order in one transaction. Never edit a step
that has shipped: add a new one.

Nothing here raises ``sqlite3`` errors to callers: every failure becomes a
``StoreError`` whose message says what is wrong and what to do.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast, get_args

import psutil

from workbench.engine import paths
from workbench.engine.errors import WorkbenchError
from workbench.engine.running.protocol import Stats

FILE_NAME = "history.sqlite"
#: How long a write waits for another program's transaction before giving up.
BUSY_TIMEOUT_S = 2.0

RunState = Literal["running", "finished", "interrupted"]
PanelState = Literal["waiting", "running", "done", "cancelled", "error", "refused", "interrupted"]
RUN_STATES: frozenset[str] = frozenset(get_args(RunState))
PANEL_STATES: frozenset[str] = frozenset(get_args(PanelState))
#: Panel states that mean the model has not finished yet.
OPEN_STATES = ("waiting", "running")

_STATS_FIELDS = frozenset(f.name for f in dataclasses.fields(Stats))
# Two start times of one process, read by two processes, agree to the clock
# tick; a different process that reused the pid started at another time.
_START_TOLERANCE_S = 0.5


class StoreError(WorkbenchError, RuntimeError):
    """The history cannot be opened, read or written; the message is for the user."""


# -- the records --------------------------------------------------------------


@dataclass(frozen=True)
class ModelRecord:
    """Which model a panel ran, as it was when the run happened.

    ``sha256`` is the hash of the whole file when it is known without reading
    the file (a verified default model); ``fingerprint`` is cheap and always
    there for a local file: the sha256 of its size, first MiB and last MiB.
    """

    id: str
    title: str
    path: str | None = None
    sha256: str | None = None
    fingerprint: str | None = None
    size: int | None = None
    mtime: float | None = None
    architecture: str = "?"
    n_params: int | None = None
    params_label: str = "?"
    quant: str = "?"
    n_ctx_train: int | None = None
    kind: str = ""


@dataclass
class Panel:
    """One model's part of a run.

    ``params`` are the settings the model ran with (shared ones plus the
    panel's overrides); ``overrides`` are only those that differ from the
    run's shared settings. Both are plain dicts so that old history always
    loads, whatever the settings of later versions look like.
    """

    position: int
    model: ModelRecord
    params: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)
    n_ctx: int | None = None
    state: PanelState = "waiting"
    text: str = ""
    stop_reason: str | None = None
    error: str | None = None
    stats: Stats | None = None
    notes: list[str] = field(default_factory=list)
    started_at: float | None = None
    finished_at: float | None = None

    @property
    def ended(self) -> bool:
        return self.state not in OPEN_STATES


@dataclass
class Run:
    """One prompt sent to one or more models. Times are Unix seconds (UTC).

    ``id`` is None until the run is stored. ``source`` is "app" or "cli";
    ``note`` is the user's own remark about the run.
    """

    id: int | None
    started_at: float
    prompt: str
    system: str = ""
    mode: str = "chat"
    schedule: str = "parallel"
    threads: int = 1
    params: dict[str, Any] = field(default_factory=dict)
    source: str = "app"
    state: RunState = "running"
    finished_at: float | None = None
    note: str = ""
    panels: list[Panel] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data; ``from_dict`` turns it back into an equal Run."""
        data = dataclasses.asdict(self)
        for panel, raw in zip(self.panels, data["panels"], strict=True):
            raw["stats"] = panel.stats.to_dict() if panel.stats else None
        return data

    @classmethod
    def from_dict(cls, data: object) -> Run:
        """Rebuild a run from ``to_dict`` data; ValueError says what is wrong."""
        d = _Fields(data, "run")
        panels = [_panel_from_dict(raw, n) for n, raw in enumerate(d.items("panels"))]
        return cls(
            id=d.opt_integer("id"),
            started_at=d.number("started_at"),
            prompt=d.text("prompt"),
            system=d.text("system"),
            mode=d.text("mode"),
            schedule=d.text("schedule"),
            threads=d.integer("threads"),
            params=d.mapping("params"),
            source=d.text("source"),
            state=cast(RunState, d.choice("state", RUN_STATES)),
            finished_at=d.opt_number("finished_at"),
            note=d.text("note"),
            panels=panels,
        )


@dataclass(frozen=True)
class RunSummary:
    """One line of the history list."""

    id: int
    started_at: float
    finished_at: float | None
    state: RunState
    source: str
    mode: str
    title: str
    models: list[str]
    states: list[PanelState]


def first_line(text: str, max_len: int = 200) -> str:
    """The first non-blank line of a prompt, for lists."""
    for line in text.splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= max_len else line[: max_len - 1] + "…"
    return ""


class _Fields:
    """Typed access to a dict read from JSON, with messages naming the field."""

    def __init__(self, data: object, where: str) -> None:
        if not isinstance(data, dict):
            raise ValueError(f"{where} must be an object")
        self.data: dict[str, Any] = data
        self.where = where

    def _get(self, key: str, kinds: tuple[type, ...], optional: bool = False) -> Any:
        if key not in self.data:
            if optional:
                return None
            raise ValueError(f"{self.where}: missing {key!r}")
        value = self.data[key]
        if value is None and optional:
            return None
        if isinstance(value, bool) and bool not in kinds:
            raise ValueError(f"{self.where}: {key!r} has the wrong type")
        if not isinstance(value, kinds):
            raise ValueError(f"{self.where}: {key!r} has the wrong type")
        return value

    def text(self, key: str) -> str:
        return cast(str, self._get(key, (str,)))

    def opt_text(self, key: str) -> str | None:
        return cast("str | None", self._get(key, (str,), optional=True))

    def integer(self, key: str) -> int:
        return cast(int, self._get(key, (int,)))

    def opt_integer(self, key: str) -> int | None:
        return cast("int | None", self._get(key, (int,), optional=True))

    def number(self, key: str) -> float:
        return float(self._get(key, (int, float)))

    def opt_number(self, key: str) -> float | None:
        value = self._get(key, (int, float), optional=True)
        return None if value is None else float(value)

    def mapping(self, key: str) -> dict[str, Any]:
        return cast("dict[str, Any]", self._get(key, (dict,)))

    def items(self, key: str) -> list[Any]:
        return cast("list[Any]", self._get(key, (list,)))

    def choice(self, key: str, allowed: frozenset[str]) -> str:
        value = self.text(key)
        if value not in allowed:
            raise ValueError(f"{self.where}: {key!r} cannot be {value!r}")
        return value


def _stats_from(data: object) -> Stats | None:
    if not isinstance(data, dict):
        return None
    known: dict[str, Any] = {
        k: v for k, v in data.items() if k in _STATS_FIELDS and isinstance(v, int | float)
    }
    return Stats(**known)


def _panel_from_dict(raw: object, n: int) -> Panel:
    d = _Fields(raw, f"panel {n + 1}")
    m = _Fields(d.mapping("model"), f"panel {n + 1} model")
    notes = d.items("notes")
    if not all(isinstance(note, str) for note in notes):
        raise ValueError(f"panel {n + 1}: 'notes' must be a list of strings")
    stats = d.data.get("stats")
    if stats is not None and not isinstance(stats, dict):
        raise ValueError(f"panel {n + 1}: 'stats' has the wrong type")
    return Panel(
        position=d.integer("position"),
        model=ModelRecord(
            id=m.text("id"),
            title=m.text("title"),
            path=m.opt_text("path"),
            sha256=m.opt_text("sha256"),
            fingerprint=m.opt_text("fingerprint"),
            size=m.opt_integer("size"),
            mtime=m.opt_number("mtime"),
            architecture=m.text("architecture"),
            n_params=m.opt_integer("n_params"),
            params_label=m.text("params_label"),
            quant=m.text("quant"),
            n_ctx_train=m.opt_integer("n_ctx_train"),
            kind=m.text("kind"),
        ),
        params=d.mapping("params"),
        overrides=d.mapping("overrides"),
        n_ctx=d.opt_integer("n_ctx"),
        state=cast(PanelState, d.choice("state", PANEL_STATES)),
        text=d.text("text"),
        stop_reason=d.opt_text("stop_reason"),
        error=d.opt_text("error"),
        stats=_stats_from(stats),
        notes=list(notes),
        started_at=d.opt_number("started_at"),
        finished_at=d.opt_number("finished_at"),
    )


# -- the schema ---------------------------------------------------------------


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

_PANEL_COLUMNS = (
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


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _describe(path: Path, exc: sqlite3.Error) -> str:
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


# -- the store ----------------------------------------------------------------


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
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                # Prompts are private: the file (and SQLite's -wal and -shm
                # files, which copy its mode) is for the user alone.
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            conn = sqlite3.connect(
                path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            store = cls(conn, path)
            # One write transaction: it fails at once (after the busy timeout)
            # when another program holds the database, rather than later.
            with store._transaction():
                store._migrate()
                store.interrupted = store._mark_interrupted()
            return store
        except OSError as exc:
            if conn is not None:
                conn.close()
            raise StoreError(f"cannot create {path} ({exc.strerror or exc})") from None
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            raise StoreError(_describe(path, exc)) from None
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
            raise StoreError(_describe(self.path, exc)) from None

    @property
    def version(self) -> int:
        with self._lock, self._errors():
            return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        current = int(self._conn.execute("PRAGMA user_version").fetchone()[0])
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer version of workbench "
                f"(schema {current}, this one knows {SCHEMA_VERSION}); upgrade workbench"
            )
        for step in MIGRATIONS:
            if step.version <= current:
                continue
            try:
                for statement in step.statements:
                    self._conn.execute(statement)
            except sqlite3.Error as exc:
                raise StoreError(
                    f"{self.path}: upgrade step {step.version} ({step.name}) failed: {exc}"
                ) from None
            # user_version is part of the transaction: a failed upgrade leaves it.
            self._conn.execute(f"PRAGMA user_version = {step.version:d}")

    def _mark_interrupted(self) -> list[int]:
        rows = self._conn.execute(
            "SELECT id, pid, pid_started, updated_at FROM runs WHERE state = 'running'"
        ).fetchall()
        found = []
        for run_id, pid, started, updated in rows:
            if process_alive(pid, started):
                continue
            self._conn.execute(
                "UPDATE runs SET state = 'interrupted', finished_at = ? WHERE id = ?",
                (updated, run_id),
            )
            self._conn.execute(
                "UPDATE panels SET state = 'interrupted', finished_at = COALESCE(updated_at, ?) "
                "WHERE run_id = ? AND state IN ('waiting', 'running')",
                (updated, run_id),
            )
            found.append(int(run_id))
        return found

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
            marks = ", ".join("?" * len(_PANEL_COLUMNS.split(",")))
            for panel in run.panels:
                m = panel.model
                conn.execute(
                    f"INSERT INTO panels ({_PANEL_COLUMNS}) VALUES ({marks})",
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
                f"SELECT {_PANEL_COLUMNS} FROM panels WHERE run_id = ? ORDER BY position",
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
            params=_json_dict(params),
            note=note,
            panels=[_panel_from_row(r) for r in panel_rows],
        )


def _json_dict(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _panel_from_row(row: tuple[Any, ...]) -> Panel:
    (_run_id, position, model_id, title, path, sha256, fingerprint, size, mtime, arch, n_params,
     params_label, quant, n_ctx_train, kind, n_ctx, params, overrides, state, text, stop_reason,
     error, stats, started_at, finished_at, _updated_at, notes) = row  # fmt: skip
    try:
        note_list = json.loads(notes)
    except ValueError:
        note_list = []
    return Panel(
        position=position,
        model=ModelRecord(
            id=model_id,
            title=title,
            path=path,
            sha256=sha256,
            fingerprint=fingerprint,
            size=size,
            mtime=mtime,
            architecture=arch,
            n_params=n_params,
            params_label=params_label,
            quant=quant,
            n_ctx_train=n_ctx_train,
            kind=kind,
        ),
        params=_json_dict(params),
        overrides=_json_dict(overrides),
        n_ctx=n_ctx,
        state=cast(PanelState, state),
        text=text,
        stop_reason=stop_reason,
        error=error,
        stats=_stats_from(json.loads(stats)) if stats else None,
        notes=[n for n in note_list if isinstance(n, str)] if isinstance(note_list, list) else [],
        started_at=started_at,
        finished_at=finished_at,
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
