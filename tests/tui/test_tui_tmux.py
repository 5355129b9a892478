"""The installed app in a real terminal (tmux, 80x24), driven like a user."""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.slow

WIDTH, HEIGHT = 80, 24
BORDERS = "│┃"


class Tmux:
    """One tmux server of our own (its own socket), holding one session.

    Everything the app writes to its terminal is copied into a FIFO
    (``pipe-pane``), so a test waits for the app to draw something rather
    than for a stretch of time.
    """

    def __init__(self, folder: Path) -> None:
        self.socket = f"workbench-test-{uuid.uuid4().hex[:8]}"
        self.session = "app"
        self.fifo = folder / "pane.fifo"
        os.mkfifo(self.fifo)
        # Opened read-write so it never reads as closed before tmux opens it.
        self._drawn = os.open(self.fifo, os.O_RDWR | os.O_NONBLOCK)

    def drawn(self, timeout: float) -> None:
        """Return once the app has written to its terminal (or after ``timeout``)."""
        ready, _, _ = select.select([self._drawn], [], [], timeout)
        if ready:
            with contextlib.suppress(BlockingIOError):
                os.read(self._drawn, 1 << 16)

    def run(self, *args: str) -> str:
        result = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10
        )
        return result.stdout

    def start(self, command: str) -> None:
        self.run("new-session", "-d", "-s", self.session, "-x", str(WIDTH), "-y", str(HEIGHT),
                 command)  # fmt: skip
        self.run("pipe-pane", "-o", "-t", self.session, f"cat > {self.fifo}")

    def keys(self, *keys: str, literal: bool = False) -> None:
        self.run("send-keys", "-t", self.session, *(["-l"] if literal else []), *keys)

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", self.session)

    def pane_pid(self) -> int:
        return int(self.run("display-message", "-p", "-t", self.session, "#{pane_pid}").strip())

    def wait_for(self, condition: Callable[[str], bool], what: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if condition(screen):
                return screen
            self.drawn(max(0.0, deadline - time.monotonic()))
        raise AssertionError(f"timed out waiting for {what}; the screen was:\n{screen}")

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)
        os.close(self._drawn)


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (apt-get install tmux)")
    session = Tmux(tmp_path)
    yield session
    session.kill()


def columns(screen: str) -> list[list[str]]:
    """The text of each panel, split at the panels' borders."""
    panels: list[list[str]] = [[], []]
    for line in screen.splitlines():
        parts = [p for p in _split(line) if p is not None]
        if len(parts) == 2:
            for i, part in enumerate(parts):
                panels[i].append(part.strip())
    return panels


def _split(line: str) -> list[str | None]:
    inside = [i for i, ch in enumerate(line) if ch in BORDERS]
    if len(inside) != 4:
        return [None]
    return [line[inside[0] + 1 : inside[1]], line[inside[2] + 1 : inside[3]]]


def completion(lines: list[str]) -> str:
    """The lines under a panel's stats (the last stats line holds tok/s)."""
    for index, line in enumerate(lines):
        if "tok/s" in line:
            return " ".join(x for x in lines[index + 1 :] if x).strip()
    return ""


def test_a_user_runs_two_models_at_80x24(tmux: Tmux, default_model_paths, tmp_path: Path):
    workbench = Path(sys.executable).parent / "workbench"
    if not workbench.exists():
        pytest.skip(f"{workbench} is missing: install the package (make setup)")
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True)
    (home / "config" / "settings.toml").write_text(
        "scan_hf_cache = false\n[generation]\nmax_tokens = 16\ntemperature = 0\n"
    )
    env = f"WORKBENCH_HOME={home} HF_HUB_OFFLINE=1"
    models = " ".join(f"-m {path}" for path in default_model_paths.values())
    tmux.start(f"env {env} {workbench} {models} -p 'The three primary colours are'")
    tmux.wait_for(lambda s: s.count("+16/") == 2, "both meters to show a count", 120)
    app = psutil.Process(tmux.pane_pid())
    # Type like a user: go to the end of the prompt, add a word, run.
    tmux.keys("End")
    tmux.keys(" red,", literal=True)
    tmux.keys("C-r")
    screen = tmux.wait_for(lambda s: s.count("done ·") == 2, "both panels to finish", 240)
    texts = [completion(lines) for lines in columns(screen)]
    assert all(texts), f"an empty completion; the screen was:\n{screen}"
    assert "TTFT" in screen and "gen" in screen and "tok/s" in screen
    workers = [p for p in app.children(recursive=True) if "worker_main" in " ".join(p.cmdline())]
    assert len(workers) == 2
    tmux.keys("C-q")
    with contextlib.suppress(psutil.TimeoutExpired):
        app.wait(timeout=30)  # the pane's shell reaps it; a zombie counts as gone
    assert not app.is_running() or app.status() == psutil.STATUS_ZOMBIE, "the app did not exit"
    _gone, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, f"worker processes remain: {[p.pid for p in alive]}"
