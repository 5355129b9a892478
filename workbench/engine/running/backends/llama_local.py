"""A llama.cpp model, driven through the low-level bindings.

This module runs only inside a worker process (see ``workbench.engine.running.worker``);
the app never imports it. The decode loop is our own rather than
``Llama.create_completion``: that API re-detokenizes the whole completion on
every token, and its per-token Python overhead costs up to a fifth of the
speed. Here a token costs one ``llama_decode``, one sample, one piece lookup
and an incremental UTF-8 decode. Greedy decoding takes the argmax of the
logits row with numpy instead of running a sampler chain, which copies the
whole vocabulary into a candidate array on every token (262k entries for
Gemma 3: more than a millisecond, a tenth of its decode time).
"""

from __future__ import annotations

import codecs
import ctypes
import dataclasses
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import llama_cpp as ll
import numpy as np

from workbench.engine.prompts.chat import TemplateError, render
from workbench.engine.running.backends.llama_load import ModelError, load_model, peak_rss_bytes
from workbench.engine.running.backends.llama_logprobs import with_probabilities
from workbench.engine.running.params import GenParams
from workbench.engine.running.protocol import (
    Done,
    Event,
    Loaded,
    Prompt,
    PromptStarted,
    Stats,
    StopReason,
    Token,
)
from workbench.engine.running.worker import FAULT_ENV

# The warm-up decodes a batch of this many tokens, then one: the first
# prompt and the first generated token take different kernels (llama.cpp's
# AMX code crashes on batches of two or more, and not on one).
WARM_UP_BATCH = 8


class LocalModel:
    """One loaded GGUF with one context, kept for the life of the worker.

    The KV cache persists between runs: ``cache`` mirrors the tokens it holds,
    so a new prompt that shares a prefix with the last run only evaluates
    what differs.
    """

    def __init__(
        self, path: str, n_ctx: int, n_threads: int, n_batch: int = 512, repack: bool = False
    ) -> None:
        start = time.perf_counter()
        mparams = ll.llama_model_default_params()
        mparams.use_mmap = True
        # The one CPU-dependent load setting, chosen by the app (engine.running.cpu).
        mparams.use_extra_bufts = repack
        self.repack = repack
        model, self.buffers = load_model(path, mparams)
        self.model = model
        cparams = ll.llama_context_default_params()
        cparams.n_ctx = n_ctx
        cparams.n_batch = n_batch
        cparams.n_ubatch = n_batch
        cparams.n_threads = n_threads
        cparams.n_threads_batch = n_threads
        cparams.no_perf = True
        # Keep the whole sliding-window cache (Gemma 3) so that any cached
        # prefix can be reused; otherwise a rerun would re-read the prompt.
        cparams.swa_full = True
        ctx = ll.llama_init_from_model(model, cparams)
        if not ctx:
            ll.llama_model_free(model)
            raise ModelError(f"llama.cpp could not create a context of {n_ctx} tokens")
        self.ctx = ctx
        self.vocab = ll.llama_model_get_vocab(model)
        self.mem = ll.llama_get_memory(ctx)
        self.n_ctx = ll.llama_n_ctx(ctx)
        self.n_batch = n_batch
        self.n_ctx_train = ll.llama_model_n_ctx_train(model)
        self.n_vocab = ll.llama_vocab_n_tokens(self.vocab)
        self.n_threads = n_threads
        raw_template = ll.llama_model_chat_template(model, None)
        self.chat_template: str | None = (
            raw_template.decode("utf-8", errors="replace") if raw_template else None
        )
        self.add_bos = bool(ll.llama_vocab_get_add_bos(self.vocab))
        self.bos = ll.llama_vocab_bos(self.vocab)
        self._piece_buf = ctypes.create_string_buffer(256)
        # token -> (is end of generation, text piece): the vocabulary never
        # changes, so each token is looked up in llama.cpp once.
        self._token_info: dict[int, tuple[bool, bytes]] = {}
        self._logits_view: tuple[int, np.ndarray] | None = None
        self.bos_text = self.piece(self.bos, special=True).decode("utf-8", "replace")
        self.eos_text = self.piece(ll.llama_vocab_eos(self.vocab), special=True).decode(
            "utf-8", "replace"
        )
        self.cache: list[int] = []
        self._warm_up()
        self.load_s = time.perf_counter() - start
        # Set by the worker's reader thread; read between tokens and by the
        # abort callback inside a long prompt evaluation.
        self.cancel = threading.Event()
        # Cancel requests name a run; one may arrive before its run starts.
        self.current_run = 0
        self.cancelled_runs: set[int] = set()
        self.want_threads = n_threads
        self._abort_cb = ll.ggml_abort_callback(lambda _data: self.cancel.is_set())
        self._no_abort = ll.ggml_abort_callback()

    def _warm_up(self) -> None:
        """Decode a small batch and then one token, and forget them.

        The weights are memory-mapped, so the first decode pages them in from
        disk. Paying that here makes it part of the load time, where users
        expect it, instead of inflating the first run's time to first token.
        It is also the model's first decode through both kinds of kernel (a
        prompt batch, a single token): if llama.cpp cannot run this model on
        this CPU, it fails here, during the load, where the app can retry it
        with other settings, rather than in the middle of a run.
        """
        fault = os.environ.get(FAULT_ENV)
        if fault == "crash-on-decode" or (self.repack and fault == "crash-on-repacked-decode"):
            os.kill(os.getpid(), signal.SIGSEGV)
        first = self.bos if self.bos >= 0 else 0
        batch = (ll.llama_token * WARM_UP_BATCH)(*([first] * WARM_UP_BATCH))
        ll.llama_decode(self.ctx, ll.llama_batch_get_one(batch, WARM_UP_BATCH))
        one = (ll.llama_token * 1)(first)
        ll.llama_decode(self.ctx, ll.llama_batch_get_one(one, 1))
        ll.llama_memory_clear(self.mem, True)

    def loaded_event(self) -> Loaded:
        return Loaded(
            load_s=self.load_s,
            rss_bytes=peak_rss_bytes(),
            n_ctx=self.n_ctx,
            n_ctx_train=self.n_ctx_train,
            n_vocab=self.n_vocab,
            has_chat_template=self.chat_template is not None,
            repack=self.repack,
            buffers=self.buffers,
            system_info=ll.llama_print_system_info().decode("utf-8", errors="replace").strip(),
        )

    # -- tokens ---------------------------------------------------------------

    def piece(self, token: int, special: bool = False) -> bytes:
        n = ll.llama_token_to_piece(self.vocab, token, self._piece_buf, 256, 0, special)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = ll.llama_token_to_piece(self.vocab, token, buf, -n, 0, special)
            return buf.raw[:n]
        return self._piece_buf.raw[:n]

    def tokenize(self, text: str, add_special: bool) -> list[int]:
        data = text.encode("utf-8")
        cap = len(data) + 8
        buf = (ll.llama_token * cap)()
        n = ll.llama_tokenize(self.vocab, data, len(data), buf, cap, add_special, True)
        if n < 0:
            cap = -n
            buf = (ll.llama_token * cap)()
            n = ll.llama_tokenize(self.vocab, data, len(data), buf, cap, add_special, True)
        return list(buf[:n])

    def render(self, prompt: Prompt) -> tuple[str, str]:
        """The text the model reads, and a note for the user (or "")."""
        if prompt.mode == "raw":
            return prompt.text, ""
        if self.chat_template is None:
            text = f"{prompt.system}\n\n{prompt.text}" if prompt.system else prompt.text
            return text, "this model has no chat template: the prompt was sent as raw text"
        try:
            return render(self.chat_template, prompt, self.bos_text, self.eos_text), ""
        except TemplateError as exc:
            raise ModelError(str(exc)) from None

    def prompt_tokens(self, prompt: Prompt) -> tuple[list[int], str]:
        text, note = self.render(prompt)
        tokens = self.tokenize(text, add_special=True)
        # Templates that write the BOS themselves would otherwise get two.
        if len(tokens) >= 2 and tokens[0] == tokens[1] == self.bos and self.add_bos:
            tokens = tokens[1:]
        return tokens, note

    def count(self, prompt: Prompt) -> tuple[int, str]:
        tokens, note = self.prompt_tokens(prompt)
        return len(tokens), note

    def token_pieces(self, prompt: Prompt) -> tuple[list[int], list[bytes], str]:
        """The prompt's tokens (as ``prompt_tokens``), each with its bytes,
        special tokens spelled out so the pieces join back to the text.

        Runs on the worker's counter thread while a run may be decoding, so it
        has a buffer of its own instead of sharing ``piece``'s.
        """
        tokens, note = self.prompt_tokens(prompt)
        buf = ctypes.create_string_buffer(256)
        pieces = []
        for token in tokens:
            n = ll.llama_token_to_piece(self.vocab, token, buf, 256, 0, True)
            if n < 0:
                big = ctypes.create_string_buffer(-n)
                n = ll.llama_token_to_piece(self.vocab, token, big, -n, 0, True)
                pieces.append(big.raw[:n])
            else:
                pieces.append(buf.raw[:n])
        return tokens, pieces, note

    # -- generation -----------------------------------------------------------

    def _sampler(self, p: GenParams) -> Any:
        chain = ll.llama_sampler_chain_init(ll.llama_sampler_chain_default_params())
        add = ll.llama_sampler_chain_add
        if p.repeat_penalty != 1.0:
            add(
                chain, ll.llama_sampler_init_penalties(self.n_vocab, 64, p.repeat_penalty, 0.0, 0.0)
            )
        if p.greedy:
            add(chain, ll.llama_sampler_init_greedy())
            return chain
        if p.top_k > 0:
            add(chain, ll.llama_sampler_init_top_k(p.top_k))
        add(chain, ll.llama_sampler_init_top_p(p.top_p, 1))
        add(chain, ll.llama_sampler_init_min_p(p.min_p, 1))
        add(chain, ll.llama_sampler_init_temp(p.temperature))
        add(chain, ll.llama_sampler_init_dist(p.seed))
        return chain

    def _info(self, token: int) -> tuple[bool, bytes]:
        """Whether ``token`` ends generation, and its text piece (cached)."""
        info = self._token_info.get(token)
        if info is None:
            info = (bool(ll.llama_vocab_is_eog(self.vocab, token)), self.piece(token))
            self._token_info[token] = info
        return info

    def _argmax(self) -> int:
        """The most likely next token: what the greedy sampler picks (the
        first of equal maxima), without building a candidate array."""
        ptr = ll.llama_get_logits_ith(self.ctx, -1)
        addr = ctypes.cast(ptr, ctypes.c_void_p).value
        if not addr:
            raise ModelError("llama.cpp returned no logits")
        view = self._logits_view
        if view is None or view[0] != addr:
            # The logits row stays where it is between decodes; map it once.
            row = (ctypes.c_float * self.n_vocab).from_address(addr)
            view = self._logits_view = (addr, np.frombuffer(row, dtype=np.float32))
        return int(view[1].argmax())

    def _logits(self) -> np.ndarray:
        """The logits row of the last decode, as a view of llama.cpp's memory."""
        ptr = ll.llama_get_logits_ith(self.ctx, -1)
        addr = ctypes.cast(ptr, ctypes.c_void_p).value
        if not addr:
            raise ModelError("llama.cpp returned no logits")
        row = (ctypes.c_float * self.n_vocab).from_address(addr)
        return np.frombuffer(row, dtype=np.float32)

    def _apply_threads(self) -> None:
        if self.want_threads != self.n_threads:
            self.n_threads = self.want_threads
            ll.llama_set_n_threads(self.ctx, self.n_threads, self.n_threads)

    def _forget_from(self, pos: int) -> None:
        ll.llama_memory_seq_rm(self.mem, 0, pos, -1)
        del self.cache[pos:]

    def _eval_prompt(self, tokens: list[int], start: int) -> bool:
        """Decode tokens[start:] in batches; False if cancelled part-way."""
        ll.llama_set_abort_callback(self.ctx, self._abort_cb, None)
        try:
            pos = start
            while pos < len(tokens):
                if self.cancel.is_set():
                    return False
                self._apply_threads()
                chunk = tokens[pos : pos + self.n_batch]
                arr = (ll.llama_token * len(chunk))(*chunk)
                rc = ll.llama_decode(self.ctx, ll.llama_batch_get_one(arr, len(chunk)))
                if rc == 2:
                    self._forget_from(pos)
                    return False
                if rc != 0:
                    self._forget_from(pos)
                    raise ModelError(f"llama_decode failed with code {rc} while reading the prompt")
                self.cache.extend(chunk)
                pos += len(chunk)
            return True
        finally:
            # The callback costs a Python call per graph node; a single-token
            # decode checks the flag itself between tokens instead.
            ll.llama_set_abort_callback(self.ctx, self._no_abort, None)

    def generate(self, run_id: int, prompt: Prompt, params: GenParams) -> Iterator[Event]:
        """Run one prompt; yields PromptStarted, Token..., Done."""
        t0 = time.perf_counter()
        # Publish the run id before looking for an early cancel: the reader
        # thread records the id before comparing, so one of us sees the other.
        self.current_run = run_id
        if run_id in self.cancelled_runs:
            self.cancel.set()
        else:
            self.cancel.clear()
        tokens, note = self.prompt_tokens(prompt)
        n_prompt = len(tokens)
        if n_prompt >= self.n_ctx:
            raise ModelError(
                f"the prompt is {n_prompt} tokens but the context window is {self.n_ctx}: "
                "shorten it or raise n_ctx"
            )
        max_tokens = params.max_tokens
        if n_prompt + max_tokens > self.n_ctx:
            max_tokens = self.n_ctx - n_prompt
            clip = f"max new tokens clipped from {params.max_tokens} to {max_tokens} to fit"
            note = f"{note}; {clip}" if note else clip

        # Reuse the longest cached prefix; always re-read the last prompt
        # token, since its logits are what the first sample needs.
        common = 0
        limit = min(len(self.cache), n_prompt - 1)
        while common < limit and self.cache[common] == tokens[common]:
            common += 1
        self._forget_from(common)
        yield PromptStarted(run_id, n_prompt, common, max_tokens, note)

        t_prompt = time.perf_counter()
        if not self._eval_prompt(tokens, common):
            yield Done(
                run_id, "cancelled", self._stats(t0, t0, t0, n_prompt, common, 0, max_tokens)
            )
            return
        t_first: float | None = None
        t_last = time.perf_counter()
        prompt_s = t_last - t_prompt

        # Greedy without penalties needs no sampler state: take the argmax.
        sampler = None if params.greedy and params.repeat_penalty == 1.0 else self._sampler(params)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        stops = params.stop
        hold = max((len(s) for s in stops), default=0)
        pending = ""  # text held back while it could still become a stop string
        one = (ll.llama_token * 1)()
        batch = ll.llama_batch_get_one(one, 1)
        # Local names: this loop runs once per token.
        sample, decode, argmax, clock = (
            ll.llama_sampler_sample,
            ll.llama_decode,
            self._argmax,
            time.perf_counter,
        )
        token_info, info = self._token_info, self._info
        incremental = decoder.decode
        ctx, cache, cancel = self.ctx, self.cache, self.cancel
        emit: Callable[[int, str], Token] = Token
        if params.logprobs:
            # Swapped in here, so that with logprobs off the loop is unchanged.
            emit, argmax, sample = with_probabilities(
                params.logprobs,
                self._logits,
                lambda token: self.piece(token, special=True),
                lambda token: self._info(token)[0],
                sample,
            )
        n_gen = 0
        reason: StopReason = "max_tokens"
        try:
            while True:
                token = argmax() if sampler is None else sample(sampler, ctx, -1)
                eog, piece = token_info.get(token) or info(token)
                if eog:
                    reason = "eos"
                    break
                n_gen += 1
                t_last = clock()
                if t_first is None:
                    t_first = t_last
                text = incremental(piece)
                if stops:
                    pending += text
                    hit = min((i for s in stops if (i := pending.find(s)) >= 0), default=-1)
                    if hit >= 0:
                        if pending[:hit]:
                            yield emit(run_id, pending[:hit])
                        pending = ""
                        reason = "stop"
                        break
                    if len(pending) > hold:
                        text, pending = (
                            pending[: len(pending) - hold],
                            pending[len(pending) - hold :],
                        )
                    else:
                        text = ""
                if text:
                    yield emit(run_id, text)
                if n_gen >= max_tokens:
                    break
                if cancel.is_set():
                    reason = "cancelled"
                    break
                if len(cache) >= self.n_ctx:
                    reason = "context"
                    break
                if self.want_threads != self.n_threads:
                    self._apply_threads()
                one[0] = token
                rc = decode(ctx, batch)
                if rc != 0:
                    raise ModelError(f"llama_decode failed with code {rc} while generating")
                cache.append(token)
        finally:
            if sampler is not None:
                ll.llama_sampler_free(sampler)
        tail = pending + decoder.decode(b"", final=True)
        if tail and reason != "stop":
            yield emit(run_id, tail)
        stats = self._stats(t0, t_first or t_last, t_last, n_prompt, common, n_gen, max_tokens)
        stats = dataclasses.replace(
            stats, prompt_tps=(n_prompt - common) / prompt_s if prompt_s > 0 else 0.0
        )
        yield Done(run_id, reason, stats)

    def _stats(
        self,
        t0: float,
        t_first: float,
        t_last: float,
        n_prompt: int,
        n_cached: int,
        n_gen: int,
        max_tokens: int,
    ) -> Stats:
        gen_s = t_last - t_first
        return Stats(
            load_s=self.load_s,
            prompt_tokens=n_prompt,
            cached_tokens=n_cached,
            ttft_s=t_first - t0,
            gen_tps=(n_gen - 1) / gen_s if n_gen > 1 and gen_s > 0 else 0.0,
            completion_tokens=n_gen,
            total_s=time.perf_counter() - t0,
            peak_rss_bytes=peak_rss_bytes(),
            n_ctx=self.n_ctx,
            max_tokens=max_tokens,
            n_threads=self.n_threads,
        )
