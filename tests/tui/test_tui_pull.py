"""The pull dialog: listing, downloading with progress, cancelling, errors,
and opening the pulled model in a new panel.

In this process huggingface_hub is imported with HF_HUB_OFFLINE=1 (see
tests/conftest.py), so these tests give the dialog a stand-in for the hub
module; the real module is exercised offline here, and once end to end, in a
subprocess, against the fake Hub server of tests/hubserver.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from history_support import LISTING, FakeHub  # type: ignore[import-not-found]
from textual.widgets import Button, Input, OptionList, ProgressBar

from workbench.engine.config import Settings
from workbench.engine.models.catalog import Catalog
from workbench.engine.models.hub import HubError
from workbench.tui.screens.pull import PullDialog, repo_id_from

HERE = Path(__file__).parent


def status(dialog: PullDialog) -> str:
    return str(dialog.query_one("#pull-status").render())


async def open_dialog(d: Any, hub: Any, rescan: Any = None) -> PullDialog:
    app = d.app
    dialog = PullDialog(hub=hub, rescan=rescan or app.rescan_catalog)
    app.push_dialog(dialog, app.add_panel)
    await d.settle()
    return dialog


async def list_repo(d: Any, dialog: PullDialog, repo: str = "test-org/tiny-GGUF") -> None:
    dialog.query_one("#pull-repo", Input).value = repo
    await d.press("enter")
    await d.until(lambda: dialog.state not in ("idle", "listing"), "the listing")
    await d.settle()


def test_repository_ids_from_what_people_paste() -> None:
    assert repo_id_from(" test-org/tiny-GGUF ") == "test-org/tiny-GGUF"
    assert repo_id_from("https://huggingface.co/test-org/tiny-GGUF/tree/main") == (
        "test-org/tiny-GGUF"
    )
    assert repo_id_from("hf.co/test-org/tiny-GGUF:Q8_0") == "test-org/tiny-GGUF"


async def test_f4_opens_the_dialog_on_the_real_hub_which_is_offline_here(build_app, drive):
    app = build_app()
    async with drive(app) as d:
        await d.press("f4")
        await d.settle()
        dialog = app.screen
        assert isinstance(dialog, PullDialog)
        assert app.focused is dialog.query_one("#pull-repo")
        await d.press(*"test-org/tiny-GGUF", "enter")
        await d.until(lambda: dialog.state == "failed", "the offline error")
        text = status(dialog)
        assert "offline mode is on" in text and "HF_HUB_OFFLINE is set" in text
        assert dialog.query_one("#pull-status").has_class("-error")
        await d.press("escape")
        await d.settle()
        assert not isinstance(app.screen, PullDialog)


async def test_list_download_and_open_the_model_in_a_new_panel(build_app, drive, tmp_path):
    gate = threading.Event()
    hub = FakeHub(tmp_path, gate=gate)  # "downloads" into tmp_path, a model folder here
    settings = Settings(scan_hf_cache=False, model_dirs=(tmp_path,))
    app = build_app(settings=settings)
    scans: list[Catalog] = []

    def rescan() -> Catalog:
        scans.append(app.rescan_catalog())
        return scans[-1]

    async with drive(app) as d:
        dialog = await open_dialog(d, hub, rescan)
        await list_repo(d, dialog, "https://huggingface.co/test-org/tiny-GGUF")
        assert hub.listed == ["test-org/tiny-GGUF"] and dialog.state == "listed"
        olist = dialog.query_one("#pull-files", OptionList)
        lines = [str(olist.get_option_at_index(i).prompt) for i in range(olist.option_count)]
        assert "tiny-IQ4_XS.gguf" in lines[0] and "IQ4_XS" in lines[0] and "70.0 MiB" in lines[0]
        assert "Q4_K_M" in lines[1] and "105.0 MiB" in lines[1]
        assert "(1 of 2 parts)" in lines[3]
        assert olist.get_option_at_index(3).disabled
        assert "4 GGUF files" in status(dialog) and app.focused is olist
        # Down to Q4_K_M, Enter: the download starts and reports progress.
        await d.press("down", "enter")
        bar = dialog.query_one("#pull-progress", ProgressBar)
        await d.until(lambda: bar.progress == (105 << 20) // 4, "a quarter of the bytes")
        assert dialog.state == "downloading" and bar.display and bar.total == 105 << 20
        assert "Downloading tiny-Q4_K_M.gguf: 26.2 MiB of 105.0 MiB" in status(dialog)
        gate.set()
        await d.until(lambda: dialog.state == "done", "the download")
        await d.settle()
        assert hub.downloads == ["tiny-Q4_K_M.gguf"] and len(scans) == 1
        assert "Downloaded tiny-Q4_K_M.gguf (105.0 MiB, sha256 verified)" in status(dialog)
        assert "The model pickers list it as tiny-q4_k_m." in status(dialog)
        assert app.focused is dialog.query_one("#pull-open", Button)
        await d.press("enter")
        await d.until(lambda: len(app.panels) == 3, "the new panel")
        await d.settle()
        assert app.panels[2].ref == "tiny-q4_k_m"
        # The model pickers use the new catalog.
        await d.press("ctrl+n")
        await d.settle()
        picker = app.screen.query_one(OptionList)
        option = picker.get_option("tiny-q4_k_m")
        assert not option.disabled and "Q4_K_M" in str(option.prompt)


async def test_escape_cancels_a_download_and_the_dialog_stays(build_app, drive, tmp_path):
    hub = FakeHub(tmp_path, gate=threading.Event())
    app = build_app()
    async with drive(app) as d:
        dialog = await open_dialog(d, hub)
        await list_repo(d, dialog)
        await d.press("enter")
        bar = dialog.query_one("#pull-progress", ProgressBar)
        await d.until(lambda: (bar.progress or 0) > 0, "some progress")
        await d.press("escape")
        assert dialog.cancel_event.is_set() and isinstance(app.screen, PullDialog)
        await d.until(lambda: dialog.state == "listed", "the cancelled download")
        await d.settle()
        assert hub.cancelled.is_set() and isinstance(app.screen, PullDialog)
        assert "download cancelled" in status(dialog)
        assert "pulling the same file again continues" in status(dialog)
        assert not dialog.query_one("#pull-status").has_class("-error")
        assert not bar.display
        await d.press("escape")  # nothing running: Esc closes
        await d.settle()
        assert not isinstance(app.screen, PullDialog)
        assert len(app.panels) == 2


async def test_closing_the_dialog_stops_its_download(build_app, drive, tmp_path):
    hub = FakeHub(tmp_path, gate=threading.Event())
    app = build_app()
    async with drive(app) as d:
        dialog = await open_dialog(d, hub)
        await list_repo(d, dialog)
        await d.press("enter")
        await d.until(lambda: dialog.state == "downloading", "the download")
        dialog.dismiss(None)
        await d.settle()
        assert hub.cancelled.is_set()


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        (HubError("test-org/private was not found on the Hub, or it is private", "auth"),
         "set HF_TOKEN or run `hf auth login`"),
        (HubError("not a repository id: 'x/'", "choice"), "not a repository id"),
        (HubError("cannot reach the Hub at http://hub: connection refused", "network"),
         "connection refused"),
    ],
)  # fmt: skip
async def test_listing_errors_are_shown_in_the_dialog(build_app, drive, tmp_path, error, shown):
    hub = FakeHub(tmp_path)
    hub.errors["test-org/private"] = error
    app = build_app()
    async with drive(app) as d:
        dialog = await open_dialog(d, hub)
        await list_repo(d, dialog, "test-org/private")
        assert dialog.state == "failed" and shown in status(dialog)
        assert app.focused is dialog.query_one("#pull-repo")
        # Enter tries again.
        hub.errors.clear()
        await d.press("enter")
        await d.until(lambda: dialog.state == "listed", "the listing")


async def test_a_failed_download_says_why_and_lets_you_choose_again(build_app, drive, tmp_path):
    hub = FakeHub(tmp_path)
    hub.download_error = HubError("checksum mismatch for tiny-Q8_0.gguf: the file was deleted",
                                  "checksum")  # fmt: skip
    app = build_app()
    async with drive(app) as d:
        dialog = await open_dialog(d, hub)
        await list_repo(d, dialog)
        await d.press("down", "down", "enter")
        await d.until(lambda: dialog.state == "listed" and hub.downloads, "the failure")
        await d.settle()
        assert "checksum mismatch" in status(dialog)
        assert dialog.query_one("#pull-status").has_class("-error")
        assert app.focused is dialog.query_one("#pull-files")


async def test_a_repository_without_gguf_files(build_app, drive, tmp_path):
    class Empty(FakeHub):
        def list_gguf(self, repo_id: str, revision: str | None = None) -> Any:
            import dataclasses

            return dataclasses.replace(LISTING, files=(), n_files=3)

    app = build_app()
    async with drive(app) as d:
        dialog = await open_dialog(d, Empty(tmp_path))
        await list_repo(d, dialog)
        assert "has no GGUF files (3 files in all)" in status(dialog)


# -- end to end, with the real hub module, in a process of its own -----------------------

DRIVE_THE_DIALOG = r"""
import asyncio, json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
from textual.widgets import Input
from tui_support import Driver
from workbench.engine.config import Settings
from workbench.tui.app import make_app
from workbench.tui.screens.pull import PullDialog


async def main() -> None:
    app = make_app(settings=Settings(), models=["nothing-here"], cursor_blink=False)
    async with Driver(app, (80, 24)) as d:
        await d.press("f4")
        await d.settle()
        dialog = app.screen
        dialog.query_one("#pull-repo", Input).value = "test-org/e2e-GGUF"
        await d.press("enter")
        await d.until(lambda: dialog.state != "listing", "the listing", timeout=60)
        await d.press("enter")
        await d.until(lambda: dialog.state in ("done", "listed", "failed"), "the pull", timeout=120)
        status = str(dialog.query_one("#pull-status").render())
        await d.press("enter")
        await d.settle()
        await d.until(lambda: len(app.panels) == 2, "the new panel", timeout=60)
        panel = app.panels[1]
        print(json.dumps({"state": dialog.state, "status": status, "ref": panel.ref,
                          "panel_state": panel.state, "title": panel.title}))
        await d.press("ctrl+q")


asyncio.run(main())
"""


@pytest.mark.slow
def test_pull_end_to_end_against_a_fake_hub(tmp_path: Path) -> None:
    from hubserver import FakeHub as FakeHubServer  # type: ignore[import-not-found]
    from test_hub import tiny_gguf  # type: ignore[import-not-found]

    script = tmp_path / "drive.py"
    script.write_text(DRIVE_THE_DIALOG)
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")}
    with FakeHubServer() as hub:
        hub.add_repo("test-org/e2e-GGUF", {"e2e-Q8_0.gguf": tiny_gguf("E2E", 7, 2 << 20)})
        env.update(HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="0",
                   WORKBENCH_HOME=str(home))  # fmt: skip
        out = subprocess.run(
            [sys.executable, str(script), str(HERE), str(HERE.parent)],
            env=env, capture_output=True, text=True, timeout=240,
        )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["state"] == "done", result
    assert "Downloaded e2e-Q8_0.gguf (2.0 MiB, sha256 verified)" in result["status"]
    # The catalog scans the Hugging Face cache: the panel opens the pulled file by its id.
    assert result["ref"] == "e2e-q8_0" and result["panel_state"] == "idle"
    cached = list((tmp_path / "hf" / "hub").rglob("e2e-Q8_0.gguf"))
    assert cached and cached[0].read_bytes() == tiny_gguf("E2E", 7, 2 << 20)
