"""Choose a model for a panel: the catalog, filtered as you type."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from workbench.engine.models.catalog import Entry
from workbench.engine.running.backends.remote_spec import SpecError, looks_like_url, parse_url
from workbench.engine.sanitize import clean

ID_WIDTH = 30


def _fit(text: str, width: int) -> str:
    text = clean(text, max_len=width)
    return text.ljust(width)


def describe_entry(entry: Entry) -> str:
    """One line: id, architecture, parameters, quantization, size."""
    if entry.info is None:
        return f"{_fit(entry.id, ID_WIDTH)} broken: {clean(entry.error or 'unreadable')}"
    i = entry.info
    return (
        f"{_fit(entry.id, ID_WIDTH)} {_fit(i.architecture, 9)} {i.params_label:>7} "
        f"{_fit(i.quant, 7)} {i.size_label:>9}"
    )


def matches(entry: Entry, words: Sequence[str]) -> bool:
    """Every typed word appears in the entry's line or its source."""
    haystack = f"{describe_entry(entry)} {entry.source} {entry.path.name}".lower()
    return all(w in haystack for w in words)


def describe_server(name: str, table: Mapping[str, Any]) -> str:
    """One line for a ``[servers.NAME]`` table: name, "server", its address and model."""
    where = str(table.get("base_url", ""))
    if model := table.get("model"):
        where += f"#{model}"
    return f"{_fit(name, ID_WIDTH)} {_fit('server', 9)} {clean(where, max_len=120)}"


def _unique(options: list[Option]) -> list[Option]:
    """The options without repeated ids (an OptionList refuses them); first wins."""
    seen: set[str] = set()
    out = []
    for option in options:
        if option.id is not None:
            if option.id in seen:
                continue
            seen.add(option.id)
        out.append(option)
    return out


class ModelPicker(ModalScreen[str | None]):
    """A list of the catalog's models; typing filters it.

    Broken files are listed, disabled, with the reason; model servers from
    the settings are listed by name. Typing a path to a ``.gguf`` file offers
    that file, and typing a server URL (``http://HOST:PORT/v1[#MODEL]``)
    offers that server. Dismisses with the model id, path, server name or
    URL, or None when cancelled.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("down", "move(1)", show=False),
        Binding("up", "move(-1)", show=False),
        Binding("pagedown", "move(8)", show=False),
        Binding("pageup", "move(-8)", show=False),
    ]

    def __init__(
        self,
        entries: Sequence[Entry],
        *,
        title: str = "Add a panel",
        servers: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__()
        self.entries = list(entries)
        self.servers = dict(servers or {})
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Vertical(id="picker-dialog", classes="dialog") as dialog:
            dialog.border_title = self.title_text
            yield Input(
                id="picker-filter",
                placeholder="type to filter: id, arch, quant… or a path to a .gguf",
                compact=True,
            )
            yield Static(
                Text(f"{'id':<{ID_WIDTH}} {'arch':<9} {'params':>7} {'quant':<7} {'size':>9}"),
                id="picker-columns",
            )
            yield OptionList(id="picker-list", compact=True)
            yield Static(
                "↑↓ choose · Enter pick · Esc cancel", id="picker-hint", classes="dialog-hint"
            )

    def on_mount(self) -> None:
        self._refill("")
        self.query_one(Input).focus()

    @property
    def option_list(self) -> OptionList:
        return self.query_one(OptionList)

    def _refill(self, query: str) -> None:
        words = query.lower().split()
        options: list[Option] = []
        for entry in self.entries:
            if matches(entry, words):
                # A server of the same name would take the id: offer the file.
                ref = str(entry.path) if entry.id in self.servers else entry.id
                options.append(Option(Text(describe_entry(entry)), id=ref,
                                      disabled=entry.info is None))  # fmt: skip
        for name, table in self.servers.items():
            line = describe_server(name, table)
            if all(w in line.lower() for w in words):
                options.append(Option(Text(line), id=name))
        typed = query.strip()
        path = Path(typed).expanduser()
        if typed.endswith(".gguf") and path.is_file():
            options.insert(0, Option(Text(f"file: {clean(str(path))}"), id=str(path)))
        elif looks_like_url(typed):
            try:
                parse_url(typed)
            except SpecError as exc:
                options.insert(0, Option(Text(clean(str(exc))), disabled=True))
            else:
                options.insert(0, Option(Text(f"server: {clean(typed)}"), id=typed))
        options = _unique(options)
        olist = self.option_list
        olist.clear_options()
        if options:
            olist.add_options(options)
        else:
            olist.add_option(Option(Text("no model matches"), disabled=True))
        olist.highlighted = self._first_enabled()

    def _first_enabled(self) -> int | None:
        olist = self.option_list
        for index in range(olist.option_count):
            if not olist.get_option_at_index(index).disabled:
                return index
        return None

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._refill(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        olist = self.option_list
        if olist.highlighted is None:
            self.notify("No model to pick: change the filter", severity="warning")
            return
        option = olist.get_option_at_index(olist.highlighted)
        if option.disabled or option.id is None:
            return
        self.dismiss(option.id)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is not None:
            self.dismiss(event.option.id)

    def action_move(self, step: int) -> None:
        olist = self.option_list
        if step > 0:
            for _ in range(step):
                olist.action_cursor_down()
        else:
            for _ in range(-step):
                olist.action_cursor_up()

    def action_cancel(self) -> None:
        self.dismiss(None)
