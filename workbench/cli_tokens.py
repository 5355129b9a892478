"""The token view of ``workbench tokens --show``: a prompt cut into its tokens.

Each token is a chip; chips are separated by ``│``, which reads without
colour, and alternate two colours on a terminal that has them. Inside a chip
a space shows as ``·``, a tab as ``→``, a line break as ``↵`` (and the view
breaks the line there too) and other control characters as their Unicode
control pictures (``␛`` for ESC), so nothing in a piece can act on the
terminal; ``sanitize.clean`` then strips anything else. A byte of a character
split over tokens shows as ``<0xNN>`` (see ``tokens.pieces_from_bytes``).
With ``--ids`` each chip ends in ``:ID``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.text import Text

from workbench.engine.prompts.tokens import visible_piece
from workbench.engine.sanitize import clean

SEPARATOR = "│"
STYLES = ("cyan", "magenta")
visible = visible_piece
"""A token's text with whitespace and controls made visible, safe to print."""


def chips(pieces: Sequence[str], ids: Sequence[int] | None = None) -> Text:
    """The pieces as alternating chips, with a line break after each ``↵``."""
    out = Text()
    for n, piece in enumerate(pieces):
        if n:
            out.append(SEPARATOR, style="dim")
            if pieces[n - 1].endswith("\n"):
                out.append("\n")
        out.append(visible(piece), style=STYLES[n % 2])
        if ids is not None:
            out.append(f":{ids[n]}", style="dim")
    return out


def print_view(
    rows: Sequence[dict[str, Any]],
    reference: dict[str, Any],
    ref_tokens: Sequence[tuple[int, str]],
    *,
    with_ids: bool,
) -> None:
    """Each model's tokens under a line naming it and its count; the cl100k
    reference last. Long views wrap at the terminal's edge, never mid-chip
    when piped."""
    from rich.console import Console

    from workbench.engine.prompts.tokens import Budget

    console = Console(highlight=False)
    sections: list[tuple[str, str, Text | None]] = []
    for row in rows:
        if "error" in row:
            continue
        b = Budget(row["prompt_tokens"], row["max_tokens"], row["n_ctx"])
        flag = "" if b.fits else "  TOO LONG"
        head = f"{row['prompt_tokens']:,} tokens   {b.describe()}{flag}"
        if row.get("pieces") is None:
            why = clean(row.get("pieces_error", ""), max_len=300)
            sections.append((row["model"], f"{head}   (no token view: {why})", None))
        else:
            view = chips(row["pieces"], row["ids"] if with_ids else None)
            sections.append((row["model"], head, view))
    ref_ids = [i for i, _ in ref_tokens] if with_ids else None
    view = chips([s for _, s in ref_tokens], ref_ids)
    sections.append((reference["label"], f"{reference['tokens']:,} tokens", view))
    for n, (name, head, body) in enumerate(sections):
        if n:
            console.print()
        console.print(Text(clean(name), style="bold") + Text(f"   {head}"), soft_wrap=True)
        if body is not None:
            console.print(body, soft_wrap=True)
