"""The bare high-level loop: ``Llama.generate()`` of llama-cpp-python, in a
process of its own (``python -m benchmarks.bare MODEL``).

This is the yardstick the product's worker is measured against, so it is
used as an application would use it: one ``Llama`` object, greedy
(``temp=0``), ``repeat_penalty=1``, ``reset=True`` on every call (which in
this version still reuses a matching cached prefix), ``n_batch`` and
``n_ubatch`` 512 and flash attention on, like the worker. Commands arrive as JSON lines on stdin;
answers go back the same way on a private copy of stdout (fd 1 itself
points at stderr, so nothing llama.cpp prints can corrupt them).

Commands (``op``): ``threads`` (n), ``tokenize`` (text), ``gen`` (text, n,
stop_at_eos: per-token timestamps), ``pp`` (text, cached: prompt evaluation
time with the first tokens already cached, as in the worker), ``rss``, ``quit``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any


def main() -> int:
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    model_path, n_ctx = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 4096

    import llama_cpp as ll
    import psutil
    from llama_cpp import Llama

    from workbench.engine.running.backends.llama_load import patch_default_params
    from workbench.engine.running.cpu import repack_for

    # The same weight repacking as the worker (a repacked model crashes
    # llama.cpp on CPUs with AMX).
    patch_default_params(repack_for("auto", Path(model_path)).enabled)

    t0 = time.perf_counter()
    llm = Llama(
        model_path,
        n_ctx=n_ctx,
        n_batch=512,
        n_ubatch=512,
        n_threads=1,
        n_threads_batch=1,
        # The worker and llama-bench leave flash attention on "auto", which
        # is "on" for the CPU; Llama() would turn it off. Same kernels, so
        # that only the loops differ.
        flash_attn=True,
        verbose=False,
    )
    load_s = time.perf_counter() - t0
    # Page the weights in before anything is timed, as the worker does.
    llm.eval(llm.tokenize(b"Hello", add_bos=True, special=True))
    llm.reset()

    def reply(data: dict[str, Any]) -> None:
        out.write(json.dumps(data) + "\n")

    reply({"ready": True, "load_s": load_s, "n_vocab": llm.n_vocab()})
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd["op"]
        if op == "quit":
            break
        if op == "threads":
            n = int(cmd["n"])
            ll.llama_set_n_threads(llm.ctx, n, n)
            reply({"ok": True})
        elif op == "tokenize":
            tokens = llm.tokenize(cmd["text"].encode(), add_bos=True, special=True)
            reply({"tokens": tokens})
        elif op == "gen":
            reply(_gen(llm, cmd["text"], int(cmd["n"]), bool(cmd.get("stop_at_eos", True))))
        elif op == "pp":
            reply(_pp(llm, cmd["text"], int(cmd.get("cached", 1))))
        elif op == "rss":
            reply({"rss": psutil.Process().memory_info().rss})
        else:
            reply({"error": f"unknown op {op!r}"})
    return 0


def _gen(llm: Any, text: str, n: int, stop_at_eos: bool) -> dict[str, Any]:
    """Greedy generation of up to n tokens; per-token arrival times."""
    import llama_cpp

    tokens = llm.tokenize(text.encode(), add_bos=True, special=True)
    vocab = llm._model.vocab

    def eog(token: int) -> bool:  # the check create_completion uses
        return bool(llama_cpp.llama_vocab_is_eog(vocab, token))

    stamps: list[float] = []
    eos = False
    start = time.perf_counter()
    clock = time.perf_counter
    for token in llm.generate(tokens, temp=0.0, top_k=1, repeat_penalty=1.0, reset=True):
        if stop_at_eos and eog(token):
            eos = True
            break
        stamps.append(clock())
        if len(stamps) >= n:
            break
    end = time.perf_counter()
    return {
        "n_prompt": len(tokens),
        "n_gen": len(stamps),
        "eos": eos,
        "wall_s": end - start,
        "ttft_s": (stamps[0] - start) if stamps else None,
        "stamps": [s - start for s in stamps],
    }


def _pp(llm: Any, text: str, cached: int) -> dict[str, Any]:
    """Evaluate a prompt through ``Llama.eval`` with its first ``cached``
    tokens already in the cache.

    The worker keeps what a new prompt shares with the last run (the BOS,
    when the model has one) and evaluates the rest; doing the same here
    keeps the two batches equal.
    """
    tokens = llm.tokenize(text.encode(), add_bos=True, special=True)
    llm.reset()
    if cached:
        llm.eval(tokens[:cached])
    start = time.perf_counter()
    llm.eval(tokens[cached:])
    seconds = time.perf_counter() - start
    return {"n_prompt": len(tokens), "n_eval": len(tokens) - cached, "seconds": seconds}


if __name__ == "__main__":
    sys.exit(main())
