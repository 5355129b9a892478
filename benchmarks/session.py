"""What the figures share: the models, their long-lived runners, the
native binary, the quiet-period gate, and the shape of a result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from benchmarks.common import BenchModel, Quiet
from benchmarks.llamabench import LlamaBench
from benchmarks.runners import Bare, Ours


@dataclass
class Row:
    """One line of the printed table."""

    name: str
    value: str
    target: str
    ok: bool | None  # None: informational, or not measured
    status: str = ""  # overrides pass/FAIL/info, e.g. "pending", "no native"

    @property
    def verdict(self) -> str:
        if self.status:
            return self.status
        if self.ok is None:
            return "info"
        return "pass" if self.ok else "FAIL"


@dataclass
class Figure:
    number: int
    title: str
    rows: list[Row] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


class Session:
    def __init__(
        self,
        models: list[BenchModel],
        *,
        quick: bool,
        rounds: int | None = None,
        native: LlamaBench | None,
        native_problem: str | None = None,
    ) -> None:
        self.models = models
        self.quick = quick
        self.rounds = rounds  # overrides the interleaved rounds of figures 1, 2 and 4
        self.native = native
        self.native_problem = native_problem
        self.quiet = Quiet(timeout=10.0 if quick else 30.0)
        self._ours: dict[str, Ours] = {}
        self._bare: dict[str, Bare] = {}

    def reps(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    def ours(self, model: BenchModel) -> Ours:
        if model.key not in self._ours:
            runner = Ours(model)
            runner.load(1)
            self._ours[model.key] = runner
        return self._ours[model.key]

    def bare(self, model: BenchModel) -> Bare:
        if model.key not in self._bare:
            self._bare[model.key] = Bare(model)
        return self._bare[model.key]

    def close(self) -> None:
        for runner in self._ours.values():
            runner.close()
        for bare in self._bare.values():
            bare.close()
        self._ours.clear()
        self._bare.clear()
