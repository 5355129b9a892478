"""From the engine's threads to the panels: events become panel messages.

Nothing here touches a widget: the comparison calls ``RunBridge.on_event``
from its own threads, and the bridge only calls ``post_message``, which
Textual makes safe from any thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from textual.message import Message

from workbench.engine.running import protocol as p
from workbench.tui.widgets.panel import ModelPanel

# How often streamed text reaches the screen. Every flush redraws a frame,
# which costs the UI process about 10 ms of CPU that the models (sharing the
# cores) would rather have; per-token updates fall behind at about 20 a
# second. All panels flush together, so this is also the frames per second.
FLUSHES_PER_SECOND = 10

Post = Callable[[Message], object]


class RunBridge:
    """Turns one comparison's events into messages for its panels.

    Token text is buffered per panel; a flusher thread posts every panel's
    buffered text together ``FLUSHES_PER_SECOND`` times a second (one
    redraw for all panels). Any other event first flushes its panel's
    text, so text always arrives before the run's end. ``close`` stops the
    flusher after a final flush.

    Token events that carry probabilities are kept with the text (from the
    first such event of a panel on, every token event of that panel), so
    the panel can place each one; a run without them keeps only the text.
    """

    def __init__(
        self,
        run: int,
        posts: Sequence[Post],
        *,
        interval: float = 1.0 / FLUSHES_PER_SECOND,
    ) -> None:
        self.run = run
        self._posts = list(posts)
        self._interval = interval
        self._lock = threading.Lock()
        self._buffers = [""] * len(posts)
        self._counts = [0] * len(posts)
        self._tokens: list[list[p.Token] | None] = [None] * len(posts)
        self._closed = threading.Event()
        self._flusher = threading.Thread(target=self._flush_loop, name="flush", daemon=True)
        self._flusher.start()

    def on_event(self, i: int, event: p.Event) -> None:
        """Called by the comparison, from its threads."""
        if isinstance(event, p.Token):
            with self._lock:
                self._buffers[i] += event.text
                self._counts[i] += 1
                kept = self._tokens[i]
                if kept is not None:
                    kept.append(event)
                elif event.logprob is not None or event.top is not None:
                    self._tokens[i] = [event]
            return
        self.flush(i)
        message = self._message(event)
        if message is not None:
            self._posts[i](message)

    def flush(self, i: int) -> None:
        with self._lock:
            text, n, kept = self._buffers[i], self._counts[i], self._tokens[i]
            self._buffers[i], self._counts[i] = "", 0
            if kept is not None:
                self._tokens[i] = []
            # Posted under the lock (posting never blocks) so the flusher and
            # the comparison's thread cannot overtake each other.
            if n:
                tokens = tuple(kept) if kept else None
                self._posts[i](ModelPanel.TokensArrived(self.run, text, n, tokens))

    def _flush_loop(self) -> None:
        while not self._closed.wait(self._interval):
            for i in range(len(self._posts)):
                self.flush(i)

    def close(self) -> None:
        """Flush what is left and stop the flusher thread."""
        self._closed.set()
        for i in range(len(self._posts)):
            self.flush(i)

    def _message(self, event: p.Event) -> Message | None:
        run = self.run
        if isinstance(event, p.Loaded):
            return ModelPanel.ModelLoaded(run, event)
        if isinstance(event, p.PromptStarted):
            return ModelPanel.PromptReadingStarted(
                run, event.n_prompt, event.n_cached, event.max_tokens, event.note
            )
        if isinstance(event, p.Done):
            return ModelPanel.RunFinished(run, event.stop_reason, event.stats)
        if isinstance(event, p.Error):
            return ModelPanel.RunFailed(run, event.message, event.kind)
        return None
