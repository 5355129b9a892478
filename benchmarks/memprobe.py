"""A host process like ``workbench compare``: runs the default pair once
(128 greedy tokens each, parallel, all cores) and prints, as JSON, its own
resident memory and each worker's next to its model file size.

``python -m benchmarks.memprobe``; used by figure 9.
"""

from __future__ import annotations

import json
import sys

import psutil

from benchmarks.common import TG_PROMPT, default_models
from workbench.engine.running import protocol as p
from workbench.engine.running.backends.local import LocalRunner
from workbench.engine.running.compare import Comparison, Job
from workbench.engine.running.params import GenParams
from workbench.engine.running.resources import OVERHEAD_BYTES, estimate_bytes, physical_cores


def main() -> int:
    models = default_models()
    runners = [LocalRunner(m.entry) for m in models]
    params = GenParams(max_tokens=128, temperature=0.0)
    try:
        comparison = Comparison(
            [Job(r, params) for r in runners],
            p.Prompt(TG_PROMPT, mode="raw"),
            schedule="parallel",
            total_threads=physical_cores(),
        )
        results = comparison.run()
        workers = {}
        for model, runner, result in zip(models, runners, results, strict=True):
            pid = runner.worker_pid
            if pid is None or result.error:
                raise SystemExit(f"{model.key}: {result.error or 'worker gone'}")
            info = psutil.Process(pid).memory_full_info()
            n_ctx = runner.n_ctx_for(params)
            weights, kv = estimate_bytes(model.entry.info, n_ctx)
            workers[model.key] = {
                "rss": info.rss,
                "uss": info.uss,
                "file_size": model.size,
                "n_ctx": n_ctx,
                "kv_estimate": kv,
                "estimate": weights + kv + OVERHEAD_BYTES,
                "peak_rss_reported": result.stats.peak_rss_bytes if result.stats else None,
            }
        host = psutil.Process().memory_full_info()
        json.dump({"workers": workers, "host_rss": host.rss, "host_uss": host.uss}, sys.stdout)
    finally:
        for r in runners:
            r.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
