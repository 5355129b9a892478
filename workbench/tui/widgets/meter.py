"""A one-line token meter: the prompt and the reserved new tokens against
the context window."""

from __future__ import annotations

from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from workbench.engine.prompts.tokens import Budget

# Fill above which the meter turns to the warning colour.
WARN_FRACTION = 0.8
MIN_BAR = 6


class TokenMeter(Widget):
    """Shows ``prompt + max new / n_ctx`` as numbers and as a bar.

    The bar has three parts, told apart by shape as well as colour so they
    read in monochrome: the prompt (``█``), the tokens reserved for the
    answer (``▒``) and the free context (``─``). Below 80 % it uses the
    normal colour, then the warning colour, and the error colour with
    ``TOO LONG`` when the prompt does not fit at all.
    """

    DEFAULT_CSS = """
    TokenMeter {
        height: 1;
        width: 1fr;
    }
    TokenMeter > .meter--ok { color: $success; }
    TokenMeter > .meter--high { color: $warning; }
    TokenMeter > .meter--over { color: $error; text-style: bold; }
    TokenMeter > .meter--free { color: $foreground-muted; }
    TokenMeter > .meter--note { color: $foreground-muted; text-style: italic; }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "meter--ok",
        "meter--high",
        "meter--over",
        "meter--free",
        "meter--note",
    }

    prompt_tokens: reactive[int | None] = reactive(None)
    max_tokens: reactive[int] = reactive(0)
    n_ctx: reactive[int] = reactive(0)
    # What the meter is doing when it has no number, or is updating one.
    status: reactive[str] = reactive("")

    @property
    def budget(self) -> Budget | None:
        if self.prompt_tokens is None or not self.n_ctx:
            return None
        return Budget(self.prompt_tokens, self.max_tokens, self.n_ctx)

    @property
    def level(self) -> str:
        """``none``, ``ok``, ``high`` or ``over``: which colour the bar has."""
        budget = self.budget
        if budget is None:
            return "none"
        if not budget.fits:
            return "over"
        return "high" if budget.fraction >= WARN_FRACTION else "ok"

    def render(self) -> Text:
        budget = self.budget
        if budget is None:
            return Text(self.status or "no prompt to count", style=self._style("note"))
        level = self.level
        if level == "over":
            label = f"TOO LONG {budget.prompt_tokens:,}/{budget.n_ctx:,}"
        else:
            label = f"{budget.prompt_tokens:,}+{budget.max_tokens:,}/{budget.n_ctx:,}"
            if level == "high":
                label += " !"
        if self.status:
            label += " …"
        width = self.size.width or 40
        bar_width = width - len(label) - 1
        if bar_width < MIN_BAR:
            return Text(label, style=self._style(level), no_wrap=True, overflow="ellipsis")
        prompt_cells, reserved_cells = self._cells(budget, bar_width)
        free_cells = bar_width - prompt_cells - reserved_cells
        bar = Text(no_wrap=True)
        bar.append("█" * prompt_cells, self._style(level))
        bar.append("▒" * reserved_cells, self._style(level))
        bar.append("─" * free_cells, self._style("free"))
        bar.append(" ")
        bar.append(label, self._style(level))
        return bar

    @staticmethod
    def _cells(budget: Budget, width: int) -> tuple[int, int]:
        """Cells for the prompt and for the reserved tokens, never more than width."""
        if not budget.fits:
            return width, 0
        n_ctx = budget.n_ctx
        prompt = min(width, round(width * budget.prompt_tokens / n_ctx))
        if budget.prompt_tokens and not prompt:
            prompt = 1  # a prompt is never invisible
        reserved = round(width * budget.clipped_max_tokens / n_ctx)
        if budget.clipped_max_tokens and not reserved:
            reserved = 1
        return prompt, max(0, min(reserved, width - prompt))

    def _style(self, part: str) -> Style:
        return self.get_component_rich_style(f"meter--{part}", partial=True)

    def on_resize(self) -> None:
        self.refresh()
