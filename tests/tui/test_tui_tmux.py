"""The installed app in a real terminal (tmux, 80x24), driven like a user."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.slow

WIDTH, HEIGHT = 80, 24
BORDERS = "│┃"


def _pause(seconds: float) -> None:
    # The app runs in another process: between two looks at its screen there
    # is nothing in this process to wait on.
    threading.Event().wait(seconds)


class Tmux:
    """One tmux server of our own (its own socket), holding one session."""

    def __init__(self) -> None:
        self.socket = f"workbench-test-{uuid.uuid4().hex[:8]}"
        self.session = "app"

    def run(self, *args: str) -> str:
        result = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10
        )
        return result.stdout

    def start(self, command: str) -> None:
        self.run("new-session", "-d", "-s", self.session, "-x", str(WIDTH), "-y", str(HEIGHT),
                 command)  # fmt: skip

    def keys(self, *keys: str, literal: bool = False) -> None:
        self.run("send-keys", "-t", self.session, *(["-l"] if literal else []), *keys)

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", self.session)

    def pane_pid(self) -> int:
        return int(self.run("display-message", "-p", "-t", self.session, "#{pane_pid}").strip())

    def alive(self) -> bool:
        return bool(self.run("list-sessions").strip())

    def wait_for(self, condition: Callable[[str], bool], what: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if condition(screen):
                return screen
            _pause(0.2)
        raise AssertionError(f"timed out waiting for {what}; the screen was:\n{screen}")

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (apt-get install tmux)")
    session = Tmux()
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
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")
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
    deadline = time.monotonic() + 30
    while tmux.alive() and app.is_running() and time.monotonic() < deadline:
        _pause(0.2)
    assert not app.is_running() or app.status() == psutil.STATUS_ZOMBIE, "the app did not exit"
    _gone, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, f"worker processes remain: {[p.pid for p in alive]}"
