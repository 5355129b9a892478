"""Token probabilities in the decode loop (the ``logprobs`` setting).

Runs only inside a worker process, beside ``llama_local``. With ``logprobs``
off none of this runs: the decode loop's argmax, sample and ``Token`` are
swapped for these measuring versions before the loop starts, so the loop
itself is the same code either way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from workbench.engine.prompts.tokens import pieces_from_bytes
from workbench.engine.running.protocol import Token


def with_probabilities(
    k: int,
    logits: Callable[[], np.ndarray],
    piece: Callable[[int], bytes],
    ends: Callable[[int], bool],
    sample: Callable[[Any, Any, int], int],
) -> tuple[Callable[[int, str], Token], Callable[[], int], Callable[[Any, Any, int], int]]:
    """The decode loop's Token, argmax and sample, measuring as they go.

    Before each token is chosen, the logits row (``logits()``, read before
    any sampler touches it) is turned into log-probabilities with a
    log-softmax over the whole vocabulary; the chosen token's and the k
    likeliest are kept. Each Token made then carries what was measured
    since the one before it: the sum of the logprobs and the first token's
    alternatives (see ``protocol.Token``). ``piece`` gives a token's text
    with special tokens spelled out; ``ends`` says whether a token ends
    generation (it is not part of the text, so it is not measured).
    """
    measured: list[Any] = [0.0, None]  # logprob sum, first top-k since the last Token
    names: dict[int, str] = {}

    def name(token: int) -> str:
        text = names.get(token)
        if text is None:
            text = names[token] = pieces_from_bytes([piece(token)])[0]
        return text

    def read() -> tuple[np.ndarray, float, np.ndarray]:
        x = logits().astype(np.float64)
        peak = x.max()
        lse = float(peak + np.log(np.exp(x - peak).sum()))
        best = np.argpartition(x, -k)[-k:]
        # Most likely first; equal values in token order, as argmax breaks ties.
        return x, lse, best[np.lexsort((best, -x[best]))]

    def keep(x: np.ndarray, lse: float, best: np.ndarray, token: int) -> None:
        if ends(token):
            return
        if measured[1] is None:
            measured[1] = [(name(int(t)), float(x[t] - lse)) for t in best]
        measured[0] += float(x[token] - lse)

    def measured_argmax() -> int:
        x, lse, best = read()
        token = int(x.argmax())
        keep(x, lse, best, token)
        return token

    def measured_sample(sampler: Any, ctx: Any, i: int) -> int:
        x, lse, best = read()
        token = sample(sampler, ctx, i)
        keep(x, lse, best, token)
        return token

    def token_event(run_id: int, text: str) -> Token:
        if measured[1] is None:  # text held back earlier, already measured
            return Token(run_id, text)
        event = Token(run_id, text, measured[1], measured[0])
        measured[0], measured[1] = 0.0, None
        return event

    return token_event, measured_argmax, measured_sample
