"""The records of the history: a run, its panels and the model each ran, as
Python objects, and their conversion from JSON (an exported run) and from
the database's rows."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args

from workbench.engine.running.protocol import Stats

RunState = Literal["running", "finished", "interrupted"]
PanelState = Literal["waiting", "running", "done", "cancelled", "error", "refused", "interrupted"]
RUN_STATES: frozenset[str] = frozenset(get_args(RunState))
PANEL_STATES: frozenset[str] = frozenset(get_args(PanelState))
#: Panel states that mean the model has not finished yet.
OPEN_STATES = ("waiting", "running")

_STATS_FIELDS = frozenset(f.name for f in dataclasses.fields(Stats))


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


def stats_from(data: object) -> Stats | None:
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
        stats=stats_from(stats),
        notes=list(notes),
        started_at=d.opt_number("started_at"),
        finished_at=d.opt_number("finished_at"),
    )


def json_dict(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def panel_from_row(row: tuple[Any, ...]) -> Panel:
    """A panel from a row of ``SELECT {schema.PANEL_COLUMNS} FROM panels``."""
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
        params=json_dict(params),
        overrides=json_dict(overrides),
        n_ctx=n_ctx,
        state=cast(PanelState, state),
        text=text,
        stop_reason=stop_reason,
        error=error,
        stats=stats_from(json.loads(stats)) if stats else None,
        notes=[n for n in note_list if isinstance(n, str)] if isinstance(note_list, list) else [],
        started_at=started_at,
        finished_at=finished_at,
    )
