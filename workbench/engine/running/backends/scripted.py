"""A scripted backend: deterministic output with no model behind it.

For UI snapshot tests and demos only. Every path it serves in the app is
also tested with a real model through ``LocalRunner``.
"""

from __future__ import annotations

import math
import threading
import zlib
from collections.abc import Iterator

from workbench.engine.running import protocol as p
from workbench.engine.running.backends.base import Header, Runner, next_id
from workbench.engine.running.params import GenParams


class ScriptedRunner(Runner):
    """Replies with ``reply`` split on spaces; counts one token per word
    plus ``overhead`` (standing in for a chat template's tokens).

    ``gate``, when given, must be set before each token is produced, so a
    test can hold a run mid-stream and inspect the screen.
    """

    def __init__(
        self,
        id: str,
        reply: str,
        *,
        header: Header | None = None,
        n_ctx: int = 2048,
        overhead: int = 10,
        fail: str | None = None,
        gate: threading.Event | None = None,
    ) -> None:
        self.id = id
        self.reply = reply
        self.header = header or Header(
            title=id,
            arch="llama",
            params="135M",
            quant="Q4_1",
            size="94 MiB",
            n_ctx_train=8192,
            kind="instruct",
        )
        self.n_ctx = n_ctx
        self.overhead = overhead
        self.fail = fail
        self.gate = gate
        self._cancel = threading.Event()
        self.closed = False

    def n_ctx_for(self, params: GenParams) -> int:
        return params.n_ctx or self.n_ctx

    def count(self, prompt: p.Prompt, params: GenParams) -> p.Counted:
        words = len((prompt.system + " " + prompt.text).split())
        extra = self.overhead if prompt.mode == "chat" else 0
        return p.Counted(next_id(), words + extra)

    def tokenize(self, prompt: p.Prompt, params: GenParams) -> p.Tokenized:
        """The words of the prompt (as ``count`` sees them) as tokens: the
        first word, then each further word with the space before it, after
        ``overhead`` chat-template tokens in chat mode. Ids are stable per word."""
        words = (prompt.system + " " + prompt.text).split()
        pieces = [w if i == 0 else " " + w for i, w in enumerate(words)]
        if prompt.mode == "chat":
            pieces = [f"<t{i}>" for i in range(self.overhead)] + pieces
        ids = [zlib.crc32(piece.encode()) % 50000 for piece in pieces]
        return p.Tokenized(next_id(), ids, pieces)

    def generate(self, prompt: p.Prompt, params: GenParams, n_threads: int) -> Iterator[p.Event]:
        self._cancel.clear()
        run_id = next_id()
        if self.fail:
            yield p.Error(run_id, self.fail, kind="load")
            return
        n_prompt = self.count(prompt, params).n_tokens
        yield p.PromptStarted(run_id, n_prompt, 0, params.max_tokens)
        words = self.reply.split(" ")
        n = 0
        for i, word in enumerate(words[: params.max_tokens]):
            if self.gate is not None:
                self.gate.wait()
            if self._cancel.is_set():
                yield p.Done(run_id, "cancelled", self._stats(n_prompt, n, params))
                return
            text = word if i == 0 else " " + word
            if params.logprobs:
                yield p.Token(run_id, text, *self._probabilities(i, text, params.logprobs))
            else:
                yield p.Token(run_id, text)
            n += 1
        reason: p.StopReason = "max_tokens" if len(words) > params.max_tokens else "eos"
        yield p.Done(run_id, reason, self._stats(n_prompt, n, params))

    @staticmethod
    def _probabilities(i: int, text: str, k: int) -> tuple[list[tuple[str, float]], float]:
        """Made-up but steady figures: the word first, then k-1 alternatives,
        every third word less certain than the others."""
        chosen = math.log(0.9 if i % 3 else 0.4)
        rest = [(f"{text}~{j}", math.log(0.5 ** (j + 2))) for j in range(k - 1)]
        return [(text, chosen), *rest], chosen

    def _stats(self, n_prompt: int, n: int, params: GenParams) -> p.Stats:
        return p.Stats(
            prompt_tokens=n_prompt,
            ttft_s=0.05,
            prompt_tps=400.0,
            gen_tps=100.0,
            completion_tokens=n,
            n_ctx=self.n_ctx_for(params),
            max_tokens=params.max_tokens,
        )

    def cancel(self) -> None:
        self._cancel.set()
        if self.gate is not None:
            self.gate.set()

    def close(self) -> None:
        self.closed = True
