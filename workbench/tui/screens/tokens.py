"""The token view: the prompt as each panel's model reads it, token by token,
stacked one model above the other, with the cl100k reference last."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Static

from workbench.engine.prompts.tokens import REFERENCE_LABEL, reference_tokens
from workbench.engine.running.backends.base import Runner, RunnerError
from workbench.engine.running.params import GenParams
from workbench.engine.running.protocol import Prompt
from workbench.engine.sanitize import clean
from workbench.tui.widgets.chips import TokenChips

# (ids, pieces, note), computed in a thread.
Fetch = Callable[[], tuple[list[int], list[str], str]]


@dataclass(frozen=True)
class TokenSource:
    """One model in the token view: its panel's runner, settings and prompt.

    ``problem`` says why there is nothing to show (no model yet, no prompt);
    the runner is then not asked.
    """

    title: str
    runner: Runner | None
    params: GenParams
    prompt: Prompt
    problem: str = ""

    def fetch(self) -> Fetch | None:
        runner = self.runner
        if runner is None or self.problem:
            return None
        prompt, params = self.prompt, self.params

        def tokenize() -> tuple[list[int], list[str], str]:
            tokenized = runner.tokenize(prompt, params)
            return list(tokenized.ids), list(tokenized.pieces), tokenized.note

        return tokenize


def reference_fetch(text: str) -> Fetch:
    def tokenize() -> tuple[list[int], list[str], str]:
        pairs = reference_tokens(text)
        return [i for i, _ in pairs], [s for _, s in pairs], ""

    return tokenize


class TokenSection(Vertical):
    """One tokenizer's view: a line naming it with its count, then the chips.

    The tokens are fetched in a thread worker when the section is mounted.
    """

    DEFAULT_CSS = """
    TokenSection {
        height: auto;
        margin-bottom: 1;
    }
    """

    @dataclass
    class TokenizeFinished(Message):
        """The tokens arrived, or ``error`` says why they cannot."""

        section: TokenSection
        ids: list[int]
        pieces: list[str]
        note: str = ""
        error: str | None = None

        @property
        def control(self) -> TokenSection:
            return self.section

    def __init__(
        self,
        title: str,
        fetch: Fetch | None,
        *,
        problem: str = "",
        about: str = "",
        show_ids: bool = False,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.title = clean(title, max_len=200)
        self.about = about
        self.problem = problem
        self.error: str | None = None
        self.ids: list[int] = []
        self.pieces: list[str] = []
        self.note = ""
        self.done = fetch is None
        self._fetch = fetch
        self._head = Static(classes="tokens-head")
        self._chips = TokenChips(show_ids=show_ids, classes="tokens-chips")

    @property
    def count(self) -> int | None:
        """The number of tokens, once known."""
        return len(self.ids) if self.done and self.error is None and not self.problem else None

    @property
    def chips(self) -> TokenChips:
        return self._chips

    def compose(self) -> ComposeResult:
        yield self._head
        yield self._chips

    def on_mount(self) -> None:
        self._chips.display = False
        self._refresh_head()
        fetch = self._fetch
        if fetch is None:
            return

        def run() -> None:
            try:
                ids, pieces, note = fetch()
            except Exception as exc:  # a model that cannot show its tokens: said in its row
                message = str(exc)
                if not isinstance(exc, RunnerError):
                    message = f"{type(exc).__name__}: {message}"
                self.post_message(self.TokenizeFinished(self, [], [], error=message))
                return
            self.post_message(self.TokenizeFinished(self, ids, pieces, note))

        self.run_worker(run, name=f"tokenize {self.title}", group="tokenize", thread=True,
                        exit_on_error=False)  # fmt: skip

    def on_token_section_tokenize_finished(self, message: TokenizeFinished) -> None:
        message.stop()
        self.done = True
        self.ids, self.pieces, self.note, self.error = (
            message.ids,
            message.pieces,
            message.note,
            message.error,
        )
        if message.error is None:
            self._chips.set_tokens(message.pieces, message.ids)
            self._chips.display = True
        self._refresh_head()

    def _refresh_head(self) -> None:
        head = Text(self.title, style="bold")
        if self.problem:
            head.append(f"   {clean(self.problem, max_len=300)}", style="italic")
        elif not self.done:
            head.append("   tokenizing…", style="italic")
        elif self.error is not None:
            head.append(f"   cannot show tokens: {clean(self.error, max_len=300)}", style="italic")
        else:
            n = len(self.ids)
            head.append(f"   {n:,} token{'s' if n != 1 else ''}")
        for extra in (self.about, self.note):
            if extra and not self.problem:
                head.append(f" · {clean(extra, max_len=300)}", style="italic")
        self._head.update(head)


class TokenViewScreen(ModalScreen[None]):
    """Every panel's tokenization of the prompt, one above the other, and the
    cl100k reference last, so it is plain why their counts differ.

    Each panel's row uses that panel's own prompt and settings (its chat
    template in chat mode). ``i`` shows or hides the token ids.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,f6,q", "close", "Close"),
        Binding("i", "toggle_ids", "Token ids"),
    ]

    def __init__(self, sources: Sequence[TokenSource], reference_text: str) -> None:
        super().__init__()
        self.sources = list(sources)
        self.reference_text = reference_text
        self.show_ids = False

    def compose(self) -> ComposeResult:
        with Vertical(id="tokens-dialog", classes="dialog") as dialog:
            dialog.border_title = "Tokens: the prompt as each model reads it"
            with VerticalScroll(id="tokens-body"):
                for number, source in enumerate(self.sources, 1):
                    about = f"{source.prompt.mode} mode"
                    yield TokenSection(
                        source.title, source.fetch(), problem=source.problem, about=about,
                        id=f"tokens-{number}",
                    )  # fmt: skip
                yield TokenSection(
                    REFERENCE_LABEL, reference_fetch(self.reference_text),
                    about="the prompt text alone", id="tokens-reference",
                )  # fmt: skip
            yield Static(
                "· space  ↵ line break  → tab · i ids · ↑↓ PgUp PgDn scroll · Esc close",
                classes="dialog-hint",
            )

    def on_mount(self) -> None:
        self.query_one("#tokens-body").focus()

    @property
    def sections(self) -> list[TokenSection]:
        return list(self.query(TokenSection))

    def action_toggle_ids(self) -> None:
        self.show_ids = not self.show_ids
        for section in self.sections:
            section.chips.show_ids = self.show_ids

    def action_close(self) -> None:
        self.dismiss(None)
