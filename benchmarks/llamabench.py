"""Running native ``llama-bench`` (see ``benchmarks.native`` for the build)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class NativeResult:
    test: str  # "pp512" or "tg128"
    n_threads: int
    tps: float  # mean over this invocation's repetitions
    samples: tuple[float, ...]
    repack: bool = True


class LlamaBench:
    def __init__(self, binary: Path) -> None:
        self.binary = binary

    def run(
        self,
        model: Path,
        threads: int,
        *,
        n_prompt: int = 0,
        n_gen: int = 0,
        reps: int = 1,
        repack: tuple[bool, ...] = (True,),
    ) -> list[NativeResult]:
        """One invocation: loads the model, warms up, runs ``reps`` times,
        for each weight-repacking setting in ``repack`` (llama-bench's
        ``--repack``), in that order."""
        cmd = [
            str(self.binary),
            "-m",
            str(model),
            "-t",
            str(threads),
            "-p",
            str(n_prompt),
            "-n",
            str(n_gen),
            "-r",
            str(reps),
            "--repack",
            ",".join("1" if r else "0" for r in repack),
            "-o",
            "json",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            tail = proc.stderr.strip().splitlines()[-3:]
            raise RuntimeError(f"llama-bench failed ({proc.returncode}): {' | '.join(tail)}")
        rows: list[dict[str, Any]] = json.loads(proc.stdout)
        results = []
        for row in rows:
            test = f"pp{row['n_prompt']}" if row.get("n_prompt") else f"tg{row['n_gen']}"
            results.append(
                NativeResult(
                    test=test,
                    n_threads=int(row["n_threads"]),
                    tps=float(row["avg_ts"]),
                    samples=tuple(float(x) for x in row.get("samples_ts", [])),
                    repack=bool(row.get("repack", True)),
                )
            )
        return results
