"""Pull a GGUF model from the Hugging Face Hub: list a repository, download a file."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, ProgressBar, Static
from textual.widgets.option_list import Option

from workbench.engine.models import hub as hub_module
from workbench.engine.models.catalog import Catalog
from workbench.engine.models.hub import HubError, HubGGUF, Progress, ProgressFn, Pulled, RepoListing
from workbench.engine.models.modelinfo import format_bytes
from workbench.engine.sanitize import clean

NAME_WIDTH = 44

# What to do about an error, by its kind, beyond the message itself.
ADVICE = {
    "offline": "HF_HUB_OFFLINE is set, so nothing may leave this machine. To pull, "
    "quit and start the workbench without it (or with HF_HUB_OFFLINE=0).",
    "auth": "Private and gated repositories need a token: set HF_TOKEN or run "
    "`hf auth login`, then start the workbench again.",
    "interrupted": "Pull the same file again to continue where it stopped.",
    "cancelled": "The part already downloaded is kept: pulling the same file again "
    "continues from there.",
}


class Hub(Protocol):
    """What the dialog needs from ``engine/models/hub.py`` (a test passes a stand-in)."""

    def list_gguf(self, repo_id: str, revision: str | None = None) -> RepoListing: ...

    def download(
        self,
        listing: RepoListing,
        model: HubGGUF,
        *,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> Pulled: ...


def repo_id_from(text: str) -> str:
    """``OWNER/NAME``, also from a Hub address or ``hf.co/OWNER/NAME``."""
    text = text.strip()
    for prefix in ("https://huggingface.co/", "http://huggingface.co/", "hf.co/", "hf://"):
        if text.startswith(prefix):
            text = "/".join(text.removeprefix(prefix).split("/")[:2])
    return text.partition(":")[0]


def describe_file(model: HubGGUF) -> Text:
    """One line: the file (and how many of its parts the Hub has), its
    quantization and size."""
    name = clean(model.label, max_len=NAME_WIDTH)
    return Text(f"{name:<{NAME_WIDTH}} {clean(model.quant, max_len=8):<8} "
                f"{format_bytes(model.size):>10}")  # fmt: skip


def ref_for_pulled(pulled: Pulled, catalog: Catalog | None) -> str:
    """The catalog id of a pulled file, or its path if the catalog does not list it."""
    if catalog is not None:
        target = pulled.path.resolve()
        for entry in catalog:
            if entry.path.resolve() == target:
                return entry.id
    return str(pulled.path)


class PullDialog(ModalScreen[str | None]):
    """List a repository's GGUF files and download one into the Hugging Face cache.

    Enter in the repository field lists its files (in a thread); Enter on a
    file downloads it (in a thread), with a progress bar; Esc cancels a
    download (the partial file is kept for the next pull), and otherwise
    closes the dialog. After a download the catalog is scanned again, so the
    model pickers list the new file, and Enter dismisses with the model to
    open in a new panel.

    ``hub`` is ``engine/models/hub.py`` unless a test passes a stand-in; ``rescan``
    rebuilds the app's catalog (it runs in a thread).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel / close"),
    ]

    @dataclass
    class Listed(Message):
        """A repository's GGUF files arrived."""

        seq: int
        listing: RepoListing

    @dataclass
    class Failed(Message):
        """Listing or downloading failed; ``kind`` is the HubError's."""

        seq: int
        message: str
        kind: str

    @dataclass
    class Downloaded(Message):
        """A file is in the cache and the catalog was scanned again."""

        seq: int
        pulled: Pulled
        ref: str

    def __init__(
        self,
        *,
        hub: Hub | None = None,
        rescan: Callable[[], Catalog] | None = None,
        repo: str = "",
    ) -> None:
        super().__init__()
        self.hub: Hub = hub if hub is not None else hub_module
        self.rescan = rescan
        self.initial_repo = repo
        self.listing: RepoListing | None = None
        self.state = "idle"  # listing, listed, downloading, cancelling, done, failed
        self.pulled_ref: str | None = None
        self.cancel_event = threading.Event()
        self._seq = 0

    def compose(self) -> ComposeResult:
        with Vertical(id="pull-dialog", classes="dialog") as dialog:
            dialog.border_title = "Pull a model from the Hugging Face Hub"
            with Horizontal(id="pull-repo-row"):
                yield Label("repo ", id="pull-repo-label")
                yield Input(self.initial_repo, id="pull-repo", compact=True,
                            placeholder="OWNER/NAME of a repository with GGUF files")  # fmt: skip
            yield Static(
                Text(f"{'file':<{NAME_WIDTH}} {'quant':<8} {'size':>10}"), id="pull-columns"
            )
            yield OptionList(id="pull-files", compact=True)
            yield ProgressBar(id="pull-progress", show_eta=False)
            yield Static("", id="pull-status")
            with Horizontal(id="pull-buttons"):
                yield Button("Open in a new panel", id="pull-open", variant="primary",
                             compact=True)  # fmt: skip
                yield Button("Cancel download", id="pull-cancel", compact=True)
            yield Static("", id="pull-hint", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one("#pull-repo", Input).focus()
        self._set_state("idle")

    def on_unmount(self) -> None:
        # Closing the dialog (or quitting the app) stops a download in progress.
        self.cancel_event.set()

    # -- state ---------------------------------------------------------------------

    HINTS: ClassVar[dict[str, str]] = {
        "idle": "Enter list the repository's GGUF files · Esc close",
        "listing": "listing… · Esc close",
        "listed": "↑↓ choose · Enter download · Shift+Tab repository · Esc close",
        "downloading": "Esc cancel the download",
        "cancelling": "cancelling…",
        "done": "Enter open it in a new panel · Esc close",
        "failed": "Enter try again · Esc close",
    }

    def _set_state(self, state: str) -> None:
        self.state = state
        listed = self.listing is not None
        self.query_one("#pull-columns").display = listed
        self.query_one("#pull-progress").display = state in ("downloading", "cancelling")
        self.query_one("#pull-open").display = state == "done"
        self.query_one("#pull-cancel").display = state == "downloading"
        self.query_one("#pull-hint", Static).update(Text(self.HINTS.get(state, "")))

    def _status(self, text: str, *, error: bool = False) -> None:
        status = self.query_one("#pull-status", Static)
        status.update(Text(clean(text, max_len=1200, keep_newlines=True)))
        status.set_class(error, "-error")

    @property
    def busy(self) -> bool:
        return self.state in ("listing", "downloading", "cancelling")

    # -- listing -------------------------------------------------------------------

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self.state == "done":
            self._open()
            return
        if self.busy:
            return
        repo = repo_id_from(event.value)
        if "/" not in repo:
            self._status("Type a repository id: OWNER/NAME.", error=True)
            return
        self.list_files(repo)

    def list_files(self, repo: str) -> None:
        """List ``repo``'s GGUF files in a thread."""
        self._seq += 1
        seq, hub = self._seq, self.hub
        self.listing = None
        self.query_one("#pull-files", OptionList).clear_options()
        self._status(f"Listing {repo}…")
        self._set_state("listing")

        def work() -> None:
            try:
                listing = hub.list_gguf(repo)
            except HubError as exc:
                self.post_message(self.Failed(seq, exc.message, exc.kind))
            except Exception as exc:  # any failure belongs in the dialog, not a traceback
                self.post_message(self.Failed(seq, f"{type(exc).__name__}: {exc}", "error"))
            else:
                self.post_message(self.Listed(seq, listing))

        self.run_worker(work, name=f"list {repo}", group="pull", thread=True,
                        exclusive=True, exit_on_error=False)  # fmt: skip

    def on_pull_dialog_listed(self, message: Listed) -> None:
        message.stop()
        if message.seq != self._seq:
            return
        listing = message.listing
        self.listing = listing
        olist = self.query_one("#pull-files", OptionList)
        olist.clear_options()
        repo = clean(listing.repo_id, max_len=120)
        if not listing.files:
            self._status(f"{repo} has no GGUF files ({listing.n_files} files in all).",
                         error=True)  # fmt: skip
            self._set_state("failed")
            return
        olist.add_options(
            [Option(describe_file(g), id=str(i), disabled=not g.complete)
             for i, g in enumerate(listing.files)]
        )  # fmt: skip
        olist.highlighted = next((i for i, g in enumerate(listing.files) if g.complete), None)
        count = len(listing.files)
        self._status(f"{repo} @ {clean(listing.commit[:12])}: {count} GGUF "
                     f"file{'s' if count != 1 else ''}. Enter downloads the highlighted one "
                     "into the Hugging Face cache.")  # fmt: skip
        self._set_state("listed")
        olist.focus()

    # -- downloading ----------------------------------------------------------------

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if self.state == "done":
            self._open()
            return
        if self.listing is None or self.busy or event.option.id is None:
            return
        self.download(self.listing.files[int(event.option.id)])

    def download(self, model: HubGGUF) -> None:
        """Download ``model`` in a thread, then scan the catalog again."""
        listing = self.listing
        assert listing is not None
        self._seq += 1
        seq, hub, rescan = self._seq, self.hub, self.rescan
        cancel = self.cancel_event = threading.Event()
        bar = self.query_one("#pull-progress", ProgressBar)
        bar.update(total=max(1, model.size), progress=0)
        self._status(f"Downloading {model.label} ({format_bytes(model.size)})…")
        self._set_state("downloading")
        self.query_one("#pull-cancel", Button).focus()
        app = self.app

        def report(progress: Progress) -> None:
            if cancel.is_set():
                return  # the dialog may be gone: never wait on the event loop then
            try:
                app.call_from_thread(self._progress, seq, progress)
            except RuntimeError:  # the app has stopped
                cancel.set()

        def work() -> None:
            try:
                pulled = hub.download(listing, model, progress=report, cancel=cancel)
                catalog = rescan() if rescan is not None else None
            except HubError as exc:
                self.post_message(self.Failed(seq, exc.message, exc.kind))
            except Exception as exc:  # any failure belongs in the dialog, not a traceback
                self.post_message(self.Failed(seq, f"{type(exc).__name__}: {exc}", "error"))
            else:
                self.post_message(self.Downloaded(seq, pulled, ref_for_pulled(pulled, catalog)))

        self.run_worker(work, name=f"download {model.name}", group="pull", thread=True,
                        exclusive=True, exit_on_error=False)  # fmt: skip

    def _progress(self, seq: int, progress: Progress) -> None:
        if seq != self._seq or not self.is_mounted:
            return
        bar = self.query_one("#pull-progress", ProgressBar)
        bar.update(total=max(1, progress.total), progress=progress.done)
        verb = "Downloading" if progress.phase == "download" else "Checking sha256 of"
        name = clean(Path(progress.file).name, max_len=60)
        self._status(f"{verb} {name}: {format_bytes(progress.done)} of "
                     f"{format_bytes(progress.total)}")  # fmt: skip

    def on_pull_dialog_downloaded(self, message: Downloaded) -> None:
        message.stop()
        if message.seq != self._seq:
            return
        pulled = message.pulled
        self.pulled_ref = message.ref
        name = pulled.model.label
        if pulled.downloaded_bytes:
            text = f"Downloaded {name} ({format_bytes(pulled.model.size)}, sha256 verified)."
        else:
            text = f"{name} was already in the cache."
        for note in pulled.notes:
            text += f"\nNote: {note}"
        text += f"\nThe model pickers list it as {message.ref}."
        self._status(text)
        self._set_state("done")
        self.query_one("#pull-open", Button).focus()

    def on_pull_dialog_failed(self, message: Failed) -> None:
        message.stop()
        if message.seq != self._seq:
            return
        text = message.message
        if advice := ADVICE.get(message.kind):
            text += f"\n{advice}"
        self._status(text, error=message.kind != "cancelled")
        if self.listing is None:  # the listing failed: fix the name, Enter again
            self._set_state("failed")
            self.query_one("#pull-repo").focus()
        else:  # a download failed or was cancelled: choose again
            self._set_state("listed")
            self.query_one("#pull-files").focus()

    # -- buttons and keys -------------------------------------------------------------

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "pull-open":
            self._open()
        elif event.button.id == "pull-cancel":
            self.action_cancel()

    def _open(self) -> None:
        if self.pulled_ref is not None:
            self.dismiss(self.pulled_ref)

    def action_cancel(self) -> None:
        if self.state == "downloading":
            self.cancel_event.set()
            self._status("Cancelling the download…")
            self._set_state("cancelling")
            return
        if self.state == "cancelling":
            return
        self.dismiss(None)
