"""The bridge from the comparison's threads to the panels, without a UI."""

from __future__ import annotations

import threading

from textual.message import Message

from workbench.engine.running import protocol as p
from workbench.tui.runs import RunBridge
from workbench.tui.widgets.panel import ModelPanel


def test_tokens_are_batched_and_arrive_before_the_end():
    received: list[Message] = []
    bridge = RunBridge(7, [received.append], interval=3600)  # the flusher never fires
    bridge.on_event(0, p.PromptStarted(1, 5, 0, 100, note="max tokens clipped"))
    for word in ["one", " two", " three"]:
        bridge.on_event(0, p.Token(1, word))
    assert [type(m) for m in received] == [ModelPanel.PromptReadingStarted]
    bridge.on_event(0, p.Done(1, "eos", p.Stats(completion_tokens=3)))
    bridge.close()
    kinds = [type(m) for m in received]
    assert kinds == [ModelPanel.PromptReadingStarted, ModelPanel.TokensArrived,
                     ModelPanel.RunFinished]  # fmt: skip
    tokens = received[1]
    assert isinstance(tokens, ModelPanel.TokensArrived)
    assert (tokens.run, tokens.text, tokens.n_tokens) == (7, "one two three", 3)
    assert received[0].note == "max tokens clipped"  # type: ignore[attr-defined]


def test_the_flusher_posts_while_tokens_stream():
    arrived = threading.Event()
    received: list[Message] = []

    def post(message: Message) -> None:
        received.append(message)
        arrived.set()

    bridge = RunBridge(1, [post], interval=0.01)
    bridge.on_event(0, p.Token(1, "hello"))
    assert arrived.wait(5), "the flusher did not post buffered text"
    bridge.close()
    assert isinstance(received[0], ModelPanel.TokensArrived)
    assert received[0].text == "hello"


def test_each_panel_gets_its_own_events():
    a: list[Message] = []
    b: list[Message] = []
    bridge = RunBridge(1, [a.append, b.append], interval=3600)
    bridge.on_event(1, p.Error(-1, "refused: prompt is 90 tokens", kind="refused"))
    bridge.on_event(0, p.Token(1, "x"))
    bridge.close()
    assert [type(m) for m in a] == [ModelPanel.TokensArrived]
    assert isinstance(b[0], ModelPanel.RunFailed) and b[0].kind == "refused"
