"""The app's side of a model worker: one OS process per local model.

A crafted or broken GGUF can abort the process that loads it (a
GGML_ASSERT, heap corruption), and an abort cannot be caught in Python. So
llama.cpp only ever runs in a child process; if it dies, the death becomes
an ``Error`` event naming the signal or exit code, and the app carries on.

The child reads requests on stdin; if the app dies, even by SIGKILL, the
kernel closes that pipe and the child exits (see ``worker_main``).
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable

from workbench.engine.errors import WorkbenchError
from workbench.engine.running import protocol as p

STDERR_LINES = 40
# A test-only fault switch, read by the worker: with this set to
# ``crash-on-repacked-decode`` the worker kills itself with SIGSEGV in its
# first decode when weight repacking is on, as llama.cpp's AMX kernels do;
# with ``crash-on-decode`` whatever the repacking (as a broken file might);
# with ``crash-after-tokens=N`` after the N-th generated token of a run.
# Nothing else reads it.
FAULT_ENV = "WORKBENCH_FAULT"


def describe_exit(code: int) -> str:
    """'killed by signal SIGKILL (9)' or 'exited with code 3'."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "unknown signal"
        return f"killed by signal {name} ({-code})"
    return f"exited with code {code}"


class WorkerDied(WorkbenchError, RuntimeError):
    """The worker process ended while a request was waiting for it."""


class WorkerProcess:
    """A running worker. Thread-safe: any thread may send.

    Events arrive on a reader thread and go to ``on_event``; when the
    process ends, ``on_exit`` gets an ``Error`` naming how it ended.
    """

    def __init__(
        self,
        on_event: Callable[[p.Event], None],
        on_exit: Callable[[p.Error], None],
        env: dict[str, str] | None = None,
    ) -> None:
        self._on_event = on_event
        self._on_exit = on_exit
        self._lock = threading.Lock()
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)
        self.exit_message: str | None = None
        self._closing = False
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "workbench.engine.running.worker_main"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            # Its own session: a Ctrl+C in the terminal reaches the app only,
            # and the app decides what happens to runs in progress.
            start_new_session=True,
            env=env,
        )
        self._stderr_done = threading.Event()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        threading.Thread(target=self._read_events, daemon=True).start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, request: p.Request) -> None:
        data = p.encode(request)
        with self._lock:
            stdin = self.proc.stdin
            if stdin is None or stdin.closed:
                raise WorkerDied(self.exit_message or "the model worker is not running")
            try:
                stdin.write(data)
                stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                raise WorkerDied(self.exit_message or "the model worker stopped") from None

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", errors="replace").rstrip()
            if line:
                self.stderr_tail.append(line)
        self._stderr_done.set()

    def _read_events(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                event = p.decode(line)
            except (ValueError, TypeError):
                self.stderr_tail.append(f"(unreadable message from worker: {line[:80]!r})")
                continue
            try:
                self._on_event(event)  # type: ignore[arg-type]
            except Exception as exc:  # a bad handler must not stop the stream
                self.stderr_tail.append(f"(event handler failed: {exc!r})")
        code = self.proc.wait()
        self._stderr_done.wait(timeout=2)
        if self._closing and code in (0, -signal.SIGKILL, -signal.SIGTERM):
            self.exit_message = "closed"
            return
        self.exit_message = f"model worker {describe_exit(code)}"
        hint = self._hint()
        self._on_exit(p.Error(-1, self.exit_message + (f": {hint}" if hint else ""), kind="crash"))

    def _hint(self) -> str:
        """The last meaningful stderr line, which usually names the failure."""
        for line in reversed(self.stderr_tail):
            if any(w in line.lower() for w in ("error", "assert", "failed", "abort")):
                return line[-300:]
        return ""

    def close(self, timeout: float = 2.0) -> None:
        """Ask the worker to quit; kill it if it does not in ``timeout`` seconds."""
        self._closing = True
        if self.alive:
            try:
                self.send(p.Quit())
                if self.proc.stdin:
                    self.proc.stdin.close()
            except WorkerDied:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
