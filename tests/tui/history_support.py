"""Helpers for the history, diff and pull tests: stored runs made up with
fixed times, and a stand-in for engine/models/hub.py that a test steers."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from workbench.engine.history.store import ModelRecord, Panel, Run, Store
from workbench.engine.models.hub import (
    DownloadCancelled,
    HubError,
    HubFile,
    HubGGUF,
    Progress,
    ProgressFn,
    Pulled,
    RepoListing,
)
from workbench.engine.running import protocol as p

# 2025-03-14 09:26:00 UTC; the tests that show times run with TZ=UTC.
T0 = 1741944360.0


def stats(tokens: int, gen_tps: float = 100.0) -> p.Stats:
    return p.Stats(
        prompt_tokens=12,
        ttft_s=0.05,
        prompt_tps=400.0,
        gen_tps=gen_tps,
        completion_tokens=tokens,
        n_ctx=2048,
        max_tokens=256,
    )


def stored_panel(position: int, model: str, text: str, **changes: Any) -> Panel:
    """A finished panel of a made-up run, scripted-runner style (no file)."""
    panel = Panel(
        position=position,
        model=ModelRecord(
            id=model,
            title=model,
            architecture="llama",
            params_label="135M",
            quant="Q4_1",
            kind="instruct",
        ),
        params={"max_tokens": 256, "temperature": 0.7},
        state="done",
        text=text,
        stop_reason="eos",
        stats=stats(len(text.split())),
    )
    for key, value in changes.items():
        setattr(panel, key, value)
    return panel


def stored_run(prompt: str, panels: list[Panel], **changes: Any) -> Run:
    run = Run(
        id=None,
        started_at=T0,
        prompt=prompt,
        params={"max_tokens": 256, "temperature": 0.7},
        state="finished",
        finished_at=T0 + 2.5,
        panels=panels,
    )
    for key, value in changes.items():
        setattr(run, key, value)
    return run


def seed_two_runs() -> tuple[int, int]:
    """Two runs in the history of the test's WORKBENCH_HOME: (older, newer)."""
    with Store.open() as store:
        older = store.create_run(
            stored_run(
                "What is the capital of France? Answer in one sentence.",
                [
                    stored_panel(0, "smollm2", "The capital of France is Paris."),
                    stored_panel(
                        1, "gemma", "Paris, and the next question was", stop_reason="max_tokens"
                    ),
                ],
            )
        )
        newer = store.create_run(
            stored_run(
                "Write a haiku about the sea.",
                [
                    stored_panel(
                        0,
                        "smollm2",
                        "Waves fold into foam",
                        state="cancelled",
                        stop_reason="cancelled",
                    ),
                    stored_panel(
                        1,
                        "gemma",
                        "",
                        state="error",
                        stop_reason=None,
                        stats=None,
                        error="worker killed by SIGKILL (9)",
                    ),
                ],
                started_at=T0 + 3600,
                finished_at=T0 + 3610,
                mode="raw",
                system="You are a poet.",
                source="cli",
            )
        )
    return older, newer


# -- a stand-in for engine/models/hub.py --------------------------------------------------


def hub_file(name: str, quant: str, size: int) -> HubGGUF:
    return HubGGUF(name, (HubFile(name, size, sha256="0" * 64),), quant)


LISTING = RepoListing(
    repo_id="test-org/tiny-GGUF",
    revision="main",
    commit="0123456789abcdef0123456789abcdef01234567",
    files=(
        hub_file("tiny-IQ4_XS.gguf", "IQ4_XS", 70 << 20),
        hub_file("tiny-Q4_K_M.gguf", "Q4_K_M", 105 << 20),
        hub_file("tiny-Q8_0.gguf", "Q8_0", 145 << 20),
        HubGGUF(
            "tiny-BF16-00001-of-00002.gguf",
            (HubFile("tiny-BF16-00001-of-00002.gguf", 200 << 20, sha256="1" * 64),),
            "BF16",
            n_parts=2,
        ),
    ),
    n_files=7,
)


class FakeHub:
    """``list_gguf`` and ``download`` as the dialog calls them, steered by a test.

    ``errors`` maps a repository id to the HubError its listing raises. A
    download reports progress in ``steps`` equal parts; with a ``gate``, it
    waits for the gate before each step after the first, so a test can look
    at the dialog half-way and cancel. ``download_error`` fails the download.
    """

    def __init__(self, tmp: Path, *, steps: int = 4, gate: threading.Event | None = None) -> None:
        self.tmp = tmp
        self.steps = steps
        self.gate = gate
        self.errors: dict[str, HubError] = {}
        self.download_error: HubError | None = None
        self.listed: list[str] = []
        self.downloads: list[str] = []
        self.cancelled = threading.Event()

    def list_gguf(self, repo_id: str, revision: str | None = None) -> RepoListing:
        self.listed.append(repo_id)
        if repo_id in self.errors:
            raise self.errors[repo_id]
        return LISTING

    def download(
        self,
        listing: RepoListing,
        model: HubGGUF,
        *,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> Pulled:
        self.downloads.append(model.name)
        total = model.size
        for step in range(self.steps + 1):
            if step > 1 and self.gate is not None:
                while not self.gate.wait(0.05):
                    if cancel is not None and cancel.is_set():
                        break
            if cancel is not None and cancel.is_set():
                self.cancelled.set()
                raise DownloadCancelled(
                    "download cancelled; the part already downloaded is kept and the next "
                    "pull continues from there"
                )
            if progress is not None:
                progress(Progress("download", model.name, total * step // self.steps, total))
        if self.download_error is not None:
            raise self.download_error
        from test_hub import tiny_gguf  # type: ignore[import-not-found]

        path = self.tmp / model.name
        path.write_bytes(tiny_gguf("Tiny", 15, 4096))  # a real header: Q4_K_M
        return Pulled(listing.repo_id, listing.commit, model, (path,), None, downloaded_bytes=total)
