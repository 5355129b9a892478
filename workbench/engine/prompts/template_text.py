"""The text of a prompt template: its ``{variables}`` and how they are filled
in, and the few-shot layout (worked examples before a new input).

``{{`` and ``}}`` are literal braces. Only plain names are variables, so
filling a template in never runs anything. ``FewShot.render(n)`` puts the
first ``n`` examples before the new input, so the zero-, one- and few-shot
versions of one task can run side by side. No files here: see
``templates.py`` for named templates and where they live.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from workbench.engine.errors import WorkbenchError

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
VARIABLE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class TemplateError(WorkbenchError, ValueError):
    """A template that cannot be found, read, filled in or saved; the message says why."""


def check_name(name: str) -> str:
    """``name`` if it can name a template file: letters, digits, ``_ . -``, at
    most 64 characters, starting with a letter or digit (so never a path)."""
    if not NAME_RE.fullmatch(name):
        raise TemplateError(
            f"{name!r} cannot name a template: use letters, digits, '_', '.' and '-' "
            "(at most 64, starting with a letter or digit)"
        )
    return name


# -- variables ------------------------------------------------------------------


def variables_of(text: str) -> list[str]:
    """The variables ``text`` uses, in order of first use.

    Only plain names are allowed: ``{input}``, not ``{input.upper}``,
    ``{0}`` or ``{input!r}``, so filling a template in never runs anything.
    """
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise TemplateError(f"{exc} (write {{{{ and }}}} for literal braces)") from None
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if not VARIABLE_RE.fullmatch(name) or spec or conversion:
            shown = "{" + name + (f"!{conversion}" if conversion else "") + (
                f":{spec}" if spec else "") + "}"  # fmt: skip
            raise TemplateError(
                f"{shown} is not a variable: write a plain name such as {{input}} "
                "(and {{ or }} for a literal brace)"
            )
        if name not in names:
            names.append(name)
    return names


def fill(text: str, values: Mapping[str, str]) -> str:
    """``text`` with its variables replaced; TemplateError names any missing."""
    wanted = variables_of(text)
    missing = [name for name in wanted if name not in values]
    if missing:
        raise TemplateError(missing_message(missing))
    return text.format_map({name: values[name] for name in wanted})


def missing_message(missing: Sequence[str]) -> str:
    names = ", ".join("{" + m + "}" for m in missing)
    how = " ".join(f"--set {m}=..." for m in missing)
    return f"no value for {names} (give it with {how})"


# -- few-shot prompts -----------------------------------------------------------


def shot_label(n: int) -> str:
    """``zero-shot``, ``one-shot``, ``3-shot``."""
    return {0: "zero-shot", 1: "one-shot"}.get(n, f"{n}-shot")


@dataclass(frozen=True)
class FewShot:
    """One task shown with 0..len(examples) worked examples before a new input.

    ``render(n)`` lays the prompt out exactly like this (labels as given)::

        <instruction>                  (this line and the blank one only when
                                        the instruction is not empty)
        Input: <example 1 input>
        Output: <example 1 output>
                                       (a blank line after each example)
        Input: <the new input>
        Output:

    The text ends right after the last label's colon, with no space or newline,
    so a base model (raw mode) continues with the answer. A text of several
    lines starts on the line below its label (``Dialogue:`` then the lines).
    """

    instruction: str
    examples: tuple[tuple[str, str], ...]
    input: str
    input_label: str = "Input"
    output_label: str = "Output"

    def __post_init__(self) -> None:
        object.__setattr__(self, "examples", tuple((str(i), str(o)) for i, o in self.examples))

    def render(self, n_shots: int | None = None) -> str:
        """The prompt with the first ``n_shots`` examples (all when None)."""
        n = len(self.examples) if n_shots is None else n_shots
        if not 0 <= n <= len(self.examples):
            raise TemplateError(
                f"{n} shots asked for, but there are {len(self.examples)} examples "
                f"(0 to {len(self.examples)})"
            )
        parts = [f"{self.instruction}\n\n"] if self.instruction else []
        for example_in, example_out in self.examples[:n]:
            parts.append(_labelled(self.input_label, example_in) + "\n")
            parts.append(_labelled(self.output_label, example_out) + "\n\n")
        parts.append(_labelled(self.input_label, self.input) + f"\n{self.output_label}:")
        return "".join(parts)


def _labelled(label: str, text: str) -> str:
    return f"{label}:\n{text}" if "\n" in text else f"{label}: {text}"


def default_shots(n_examples: int) -> list[int]:
    """Zero, one and all examples (without repeats): the classic comparison."""
    return sorted({0, min(1, n_examples), n_examples})


def variants(fewshot: FewShot, shots: Iterable[int] | None = None) -> list[tuple[str, str]]:
    """(label, prompt) for each number of shots, for panels side by side:
    zero-, one- and few-shot by default (``default_shots``)."""
    counts = list(shots) if shots is not None else default_shots(len(fewshot.examples))
    return [(shot_label(n), fewshot.render(n)) for n in counts]
