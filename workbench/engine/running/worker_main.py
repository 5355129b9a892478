"""The worker process: one llama.cpp model, driven by requests on stdin.

Started by ``workbench.engine.running.worker.WorkerProcess`` as
``python -m workbench.engine.running.worker_main``. Events go back on a private
copy of the original stdout; fd 1 itself is pointed at stderr, so anything
llama.cpp prints can never corrupt the protocol stream.

Three threads:
- the reader takes requests off stdin. ``Cancel`` and ``SetThreads`` act at
  once (they must reach a run in progress); EOF means the app is gone, and
  the worker exits on the spot, whatever it was doing.
- the counter answers ``Count`` requests, only the newest when several wait,
  so token meters keep up while a run is streaming (tokenizing reads the
  vocabulary only and does not touch the context a run is using). It answers
  every ``Tokenize`` (a token view) too, in order.
- the main thread loads the model and runs generations.

The worker lowers its own CPU priority (``WORKER_NICE``) before anything
else: decoding keeps every core busy, and the process the user is typing
into must get a core the moment a key arrives.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

from workbench.engine.prompts.tokens import pieces_from_bytes
from workbench.engine.running import protocol as p
from workbench.engine.running.worker import FAULT_ENV

# Added to the worker's nice value. With two models decoding on two cores,
# an app at the same priority waits its turn behind them for every key
# press and every frame; a nicer worker yields to it at once. A model
# running alone loses nothing: priority only decides who goes first when
# both want the CPU.
WORKER_NICE = 5


def main() -> int:
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICE)
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    lock = threading.Lock()

    def send(event: p.Event) -> None:
        data = p.encode(event)
        with lock:
            out.write(data)

    jobs: queue.Queue[p.Request] = queue.Queue()
    counts: queue.Queue[p.Count | p.Tokenize] = queue.Queue()
    state: dict[str, Any] = {"model": None}
    threading.Thread(target=_read, args=(jobs, counts, state, send), daemon=True).start()
    threading.Thread(target=_count_loop, args=(counts, state, send), daemon=True).start()

    from workbench.engine.running.backends.llama_load import ModelError
    from workbench.engine.running.backends.llama_local import LocalModel
    from workbench.engine.running.params import ParamError, from_mapping

    crash_after = _fault_tokens(os.environ.get(FAULT_ENV, ""))

    while True:
        req = jobs.get()
        if isinstance(req, p.Quit):
            return 0
        try:
            if isinstance(req, p.Load):
                model = LocalModel(req.path, req.n_ctx, req.n_threads, req.n_batch, req.repack)
                state["model"] = model
                send(model.loaded_event())
            elif isinstance(req, p.Generate):
                model = state["model"]
                if not isinstance(model, LocalModel):
                    send(p.Error(req.id, "no model is loaded in this worker"))
                    continue
                params = from_mapping(req.params)
                model.want_threads = max(1, req.n_threads)
                n_tokens = 0
                for event in model.generate(req.id, req.prompt, params):
                    send(event)
                    if crash_after and isinstance(event, p.Token):
                        n_tokens += 1
                        if n_tokens >= crash_after:
                            os.kill(os.getpid(), signal.SIGSEGV)
        except (ModelError, ParamError) as exc:
            send(p.Error(getattr(req, "id", -1), str(exc)))
        except Exception as exc:  # report, stay alive for the next request
            traceback.print_exc(file=sys.stderr)
            send(p.Error(getattr(req, "id", -1), f"{type(exc).__name__}: {exc}", kind="internal"))


def _fault_tokens(fault: str) -> int:
    """N from the test-only fault ``crash-after-tokens=N``, else 0."""
    name, _, value = fault.partition("=")
    return int(value) if name == "crash-after-tokens" and value.isdigit() else 0


def _read(
    jobs: queue.Queue[p.Request],
    counts: queue.Queue[p.Count | p.Tokenize],
    state: dict[str, Any],
    send: Callable[[p.Event], None],
) -> None:
    for line in sys.stdin.buffer:
        try:
            req = p.decode(line)
        except (ValueError, TypeError) as exc:
            send(p.Error(-1, f"bad request: {exc}", kind="protocol"))
            continue
        model = state.get("model")
        if isinstance(req, p.Cancel):
            if model is not None:
                model.cancelled_runs.add(req.id)
                if req.id in (0, model.current_run):
                    model.cancel.set()
        elif isinstance(req, p.SetThreads):
            if model is not None:
                model.want_threads = max(1, req.n_threads)
        elif isinstance(req, p.Count | p.Tokenize):
            counts.put(req)
        elif isinstance(req, p.Load | p.Generate | p.Quit):
            jobs.put(req)
        else:
            send(p.Error(-1, f"not a request: {type(req).__name__}", kind="protocol"))
    # stdin closed: the app has exited or died (even by SIGKILL, the kernel
    # closes its end of the pipe). Never outlive it.
    os._exit(0)


def _count_loop(
    counts: queue.Queue[p.Count | p.Tokenize],
    state: dict[str, Any],
    send: Callable[[p.Event], None],
) -> None:
    while True:
        waiting = [counts.get()]
        while not counts.empty():
            waiting.append(counts.get_nowait())
        # Only the newest count matters (a meter shows the latest text); every
        # token view asked for gets its answer.
        newest = next((r for r in reversed(waiting) if isinstance(r, p.Count)), None)
        for req in waiting:
            if req is newest or isinstance(req, p.Tokenize):
                _answer(req, state.get("model"), send)


def _answer(req: p.Count | p.Tokenize, model: Any, send: Callable[[p.Event], None]) -> None:
    kind = "count" if isinstance(req, p.Count) else "tokenize"
    if model is None:
        send(p.Error(req.id, "model not loaded yet", kind=kind))
        return
    try:
        if isinstance(req, p.Count):
            n, note = model.count(req.prompt)
            send(p.Counted(req.id, n, note))
        else:
            ids, pieces, note = model.token_pieces(req.prompt)
            send(p.Tokenized(req.id, ids, pieces_from_bytes(pieces), note))
    except Exception as exc:
        send(p.Error(req.id, str(exc), kind=kind))


if __name__ == "__main__":
    raise SystemExit(main())
