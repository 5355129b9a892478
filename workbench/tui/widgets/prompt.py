"""The prompt area: editor, system prompt, mode switch, reference count."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Input, Static, TextArea

from workbench.engine.prompts.tokens import REFERENCE_LABEL, reference_count
from workbench.engine.running.protocol import Mode, Prompt


class ModeSwitch(Widget, can_focus=True):
    """A one-line chat / raw switch (a Select or RadioSet takes 3 lines)."""

    DEFAULT_CSS = """
    ModeSwitch {
        width: auto;
        height: 1;
        padding: 0 1;
        & > .mode--on { text-style: bold reverse; }
        & > .mode--off { color: $foreground-muted; }
        &:focus { background: $block-cursor-blurred-background; }
        &:focus > .mode--on {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
        }
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space,enter", "toggle_mode", "Toggle mode", show=False),
        Binding("left", "set_mode('chat')", show=False),
        Binding("right", "set_mode('raw')", show=False),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {"mode--on", "mode--off"}

    mode: reactive[Mode] = reactive("chat", init=False)

    @dataclass
    class ModeChanged(Message):
        """The user switched between chat and raw completion."""

        switch: ModeSwitch
        mode: Mode

        @property
        def control(self) -> ModeSwitch:
            return self.switch

    def render(self) -> Text:
        on = self.get_component_rich_style("mode--on", partial=True)
        off = self.get_component_rich_style("mode--off", partial=True)
        text = Text("mode ", no_wrap=True)
        text.append(" chat ", on if self.mode == "chat" else off)
        text.append(" raw ", on if self.mode == "raw" else off)
        return text

    def watch_mode(self, mode: Mode) -> None:
        self.post_message(self.ModeChanged(self, mode))

    def action_toggle_mode(self) -> None:
        self.mode = "raw" if self.mode == "chat" else "chat"

    def action_set_mode(self, mode: Mode) -> None:
        self.mode = mode

    def on_click(self) -> None:
        self.action_toggle_mode()


class PromptArea(Vertical):
    """What the user types once for every panel.

    Posts ``PromptArea.PromptEdited`` on every change of the text, the
    system prompt or the mode; the app debounces counting after it.
    """

    DEFAULT_CSS = """
    PromptArea {
        height: auto;
    }
    """

    @dataclass
    class PromptEdited(Message):
        """The prompt text, the system prompt or the mode changed."""

        area: PromptArea

        @property
        def control(self) -> PromptArea:
            return self.area

    @dataclass
    class ReferenceCounted(Message):
        """The reference (cl100k) count of the prompt text finished."""

        seq: int
        n_tokens: int

    def __init__(self, text: str = "", *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._reference_seq = 0
        self._reference_text: str | None = None
        self.editor = TextArea(
            text, id="prompt-editor", soft_wrap=True, tab_behavior="focus", compact=True,
            placeholder="Type a prompt; Ctrl+R runs it on every panel",
        )  # fmt: skip
        self.editor.border_title = "Prompt"
        self.system = Input(
            id="system-prompt", placeholder="system prompt (chat mode)", compact=True
        )
        self.switch = ModeSwitch(id="mode-switch")
        self.reference = Static(Text(f"{REFERENCE_LABEL}: 0"), id="reference-count")

    def compose(self) -> ComposeResult:
        yield self.editor
        with Horizontal(id="prompt-options"):
            yield self.system
            yield self.switch
            yield self.reference

    @property
    def prompt(self) -> Prompt:
        return Prompt(self.editor.text, self.system.value, self.switch.mode)

    def set_reference(self, n_tokens: int | None) -> None:
        shown = "…" if n_tokens is None else f"{n_tokens:,}"
        self.reference.update(Text(f"{REFERENCE_LABEL}: {shown}"))

    def count_reference(self) -> None:
        """Count the text with cl100k in a thread; only the newest count is shown.

        The first count reads the encoding file, which takes a moment.
        """
        text = self.editor.text
        if text == self._reference_text:
            return
        self._reference_text = text
        self._reference_seq += 1
        seq = self._reference_seq
        if not text:
            self.set_reference(0)
            return

        def count() -> None:
            self.post_message(self.ReferenceCounted(seq, reference_count(text)))

        self.run_worker(count, name="reference count", group="reference", thread=True,
                        exclusive=True, exit_on_error=False)  # fmt: skip

    def on_prompt_area_reference_counted(self, message: ReferenceCounted) -> None:
        message.stop()
        if message.seq == self._reference_seq:
            self.set_reference(message.n_tokens)

    def toggle_mode(self) -> None:
        self.switch.action_toggle_mode()

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        event.stop()
        self.post_message(self.PromptEdited(self))

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.post_message(self.PromptEdited(self))

    def on_mode_switch_mode_changed(self, event: ModeSwitch.ModeChanged) -> None:
        event.stop()
        self.post_message(self.PromptEdited(self))
