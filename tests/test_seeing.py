"""Seeing inside a model: token views, next-token probabilities, prompt
templates with few-shot variants, and sweeps of one setting.

The pure parts run without a model; the rest use the real SmolLM2 in a
worker, one runner shared by the module, and the CLI as a user runs it.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from workbench.engine.config import TEMPLATE, load_settings
from workbench.engine.history.store import Store
from workbench.engine.models.catalog import build_catalog
from workbench.engine.prompts import templates as t
from workbench.engine.prompts.sweep import label, parse_sweep, sweep
from workbench.engine.prompts.tokens import pieces_from_bytes, reference_count, reference_tokens
from workbench.engine.running import protocol as p
from workbench.engine.running.backends.base import Runner, RunnerError
from workbench.engine.running.backends.local import LocalRunner
from workbench.engine.running.backends.remote import RemoteRunner
from workbench.engine.running.backends.remote_spec import parse_url
from workbench.engine.running.backends.scripted import ScriptedRunner
from workbench.engine.running.backends.variant import VariantRunner
from workbench.engine.running.params import FIELDS, HELP, GenParams, ParamError, from_mapping

SMOL = "smollm2-135m-instruct-q4_1"


# -- token pieces ---------------------------------------------------------------


def test_pieces_join_back_and_split_characters_show_their_bytes() -> None:
    assert pieces_from_bytes([b"Hello", b" world"]) == ["Hello", " world"]
    # 日 (E6 97 A5) split 2 + 1; 🌊 (F0 9F 8C 8A) over three tokens.
    chunks = [b"\xe6\x97", b"\xa5", b"\xe6\x9c\xac", b" \xf0\x9f", b"\x8c", b"\x8a", b"\xc3\xa1"]
    assert pieces_from_bytes(chunks) == [
        "<0xE6><0x97>", "<0xA5>", "本", " <0xF0><0x9F>", "<0x8C>", "<0x8A>", "á",
    ]  # fmt: skip
    # Whole characters on either side of a split stay text in their token.
    assert pieces_from_bytes([b"a\xe6\x97", b"\xa5b"]) == ["a<0xE6><0x97>", "<0xA5>b"]
    # Bytes that are no character at all, and empty tokens.
    assert pieces_from_bytes([b"\xff", b"", b"x\xc3"]) == ["<0xFF>", "", "x<0xC3>"]
    assert pieces_from_bytes([]) == []


def test_reference_tokens_match_the_reference_count() -> None:
    text = "Hello world, 日本語 🌊"
    tokens = reference_tokens(text)
    assert len(tokens) == reference_count(text)
    assert tokens[:2] == [(9906, "Hello"), (1917, " world")]
    joined = "".join(piece for _, piece in tokens)
    assert joined.startswith("Hello world, ") and "<0x" in joined  # cl100k splits 語 and 🌊
    assert "".join(s for _, s in reference_tokens("plain ascii text")) == "plain ascii text"


# -- protocol and settings ---------------------------------------------------------


def test_token_events_carry_nothing_extra_when_probabilities_are_off() -> None:
    assert p.encode(p.Token(3, "hi")) == b'{"id":3,"text":"hi","t":"Token"}\n'
    rich = p.Token(3, "hi", [("hi", -0.1), ("ho", -2.5)], -0.1)
    assert p.decode(p.encode(rich)) == rich
    tokenized = p.Tokenized(4, [1, 2], ["<bos>", "Hi"], "note")
    assert p.decode(p.encode(tokenized)) == tokenized
    request = p.Tokenize(5, p.Prompt("x", mode="raw"))
    assert p.decode(p.encode(request)) == request


def test_logprobs_setting_is_checked_documented_and_in_the_template() -> None:
    assert from_mapping({"logprobs": "5"}).logprobs == 5
    for bad in (-1, 11):
        with pytest.raises(ParamError, match="logprobs must be 0 \\(off\\) to 10"):
            GenParams(logprobs=bad)
    assert "logprobs" in FIELDS and "logprobs" in HELP
    path = Path(os.environ["WORKBENCH_HOME"]) / "settings.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(TEMPLATE.replace("logprobs = 0 ", "logprobs = 3 "))
    settings = load_settings(path)
    assert settings.warnings == [] and settings.generation.logprobs == 3


# -- sweeps ---------------------------------------------------------------------------


def test_a_sweep_makes_one_setting_per_value() -> None:
    base = GenParams(max_tokens=8, seed=1)
    runs = sweep(base, "temperature=0, 0.7,1.2")
    assert [r.temperature for r in runs] == [0.0, 0.7, 1.2]
    assert all(r.max_tokens == 8 and r.seed == 1 for r in runs)
    assert [r.top_p for r in sweep(base, "top-p=0.5,1")] == [0.5, 1.0]
    assert parse_sweep("seed=1,2") == ("seed", [1, 2])
    assert [label("temperature", 0.0), label("seed", 7)] == ["temperature=0", "seed=7"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("warmth=1,2", "cannot sweep 'warmth': not a setting"),
        ("temperature", "a sweep is NAME=V1,V2"),
        ("stop=a,b", "stop strings cannot be swept"),
        ("temperature=0,,1", "an empty value"),
        ("temperature=0.5,0.50", "given twice"),
        ("temperature=0,9", "temperature must be between 0 and 5, not 9.0"),
        ("top_k=1.5", "top_k must be a int"),
        ("seed=" + ",".join(map(str, range(9))), "at most 8"),
    ],
)
def test_a_bad_sweep_says_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(ParamError, match=message):
        sweep(GenParams(), spec)


# -- templates ------------------------------------------------------------------------

TASK = t.FewShot(
    "Label each fruit's colour.",
    [("banana", "yellow"), ("plum", "purple"), ("lime", "green")],
    "cherry",
    input_label="Fruit",
    output_label="Colour",
)


def test_few_shot_layout_is_exact() -> None:
    assert TASK.render(0) == "Label each fruit's colour.\n\nFruit: cherry\nColour:"
    assert TASK.render(1) == (
        "Label each fruit's colour.\n\nFruit: banana\nColour: yellow\n\nFruit: cherry\nColour:"
    )
    assert TASK.render() == TASK.render(3)
    assert TASK.render(3).count("\n\n") == 4
    no_instruction = t.FewShot("", [("a", "b")], "c")
    assert no_instruction.render(1) == "Input: a\nOutput: b\n\nInput: c\nOutput:"
    assert t.FewShot("", [], "two\nlines").render(0) == "Input:\ntwo\nlines\nOutput:"
    with pytest.raises(t.TemplateError, match="4 shots asked for, but there are 3 examples"):
        TASK.render(4)
    assert [label for label, _ in t.variants(TASK)] == ["zero-shot", "one-shot", "3-shot"]
    assert t.variants(TASK, [2])[0] == ("2-shot", TASK.render(2))


def test_template_variables_defaults_and_clear_errors() -> None:
    qa = t.Template("qa", "{{literal}} {context} / {question}", defaults={"context": "C"})
    assert qa.variables == ["context", "question"]
    assert qa.render({"question": "Q"}) == "{literal} C / Q"
    with pytest.raises(t.TemplateError, match=r"no value for \{question\} \(give it with --set"):
        qa.render()
    with pytest.raises(t.TemplateError, match=r"has no variable \{qestion\}"):
        qa.render({"qestion": "typo"})
    with pytest.raises(t.TemplateError, match="not a variable"):
        t.Template("bad", "{input.__class__}")
    with pytest.raises(t.TemplateError, match="literal braces"):
        t.Template("bad", "a { b")
    with pytest.raises(t.TemplateError, match="takes no shots"):
        qa.render({"question": "Q"}, shots=2)


@pytest.mark.parametrize("name", ["../evil", "a/b", "a\\b", "", ".hidden", "x" * 65, "sp ace"])
def test_template_names_cannot_be_paths(name: str) -> None:
    with pytest.raises(t.TemplateError, match="cannot name a template"):
        t.Template(name, "x")
    with pytest.raises(t.TemplateError, match="cannot name a template"):
        t.delete_template(name)


def test_user_templates_save_load_list_and_delete(workbench_home: Path) -> None:
    tricky = 'quotes " and """ and \\ backslash \t tab\x7f del, {{braces}} and {input}\n'
    template = t.Template(
        "mine", tricky + "second line", system="Be {input}.", mode="raw",
        examples=[("in\n1", 'out "1"')], defaults={"input": "brief"},
        description="my own", input_label="Q", output_label="A",
    )  # fmt: skip
    path = t.save_template(template)
    assert path.parent == t.templates_dir() and path.parent.is_relative_to(workbench_home)
    assert t.load_template("mine") == template
    (t.templates_dir() / "broken.toml").write_text("text = ")
    warnings: list[str] = []
    names = [x.name for x in t.list_templates(warnings.append)]
    assert names == ["sentiment", "dialogue-summary", "passage-qa", "mine"]
    assert len(warnings) == 1 and "broken.toml is not valid TOML" in warnings[0]
    with pytest.raises(t.TemplateError, match="read-only"):
        t.save_template(t.Template("sentiment", "x"))
    with pytest.raises(t.TemplateError, match="cannot be deleted"):
        t.delete_template("sentiment")
    assert t.delete_template("mine") and not t.delete_template("mine")
    with pytest.raises(t.TemplateError, match="no template 'mine'"):
        t.load_template("mine")


def test_builtin_templates_render_their_classic_tasks() -> None:
    builtins = t.builtin_templates()
    sentiment = builtins["sentiment"]
    assert sentiment.builtin and len(sentiment.examples) == 3 and sentiment.mode == "raw"
    labels = [label for label, _ in sentiment.variants()]
    assert labels == ["zero-shot", "one-shot", "3-shot"]
    few = sentiment.prompt({"input": "Great."}, 3)
    assert few.mode == "raw" and few.text.endswith("Review: Great.\nSentiment:")
    assert few.text.count("Sentiment: ") == 3
    assert builtins["dialogue-summary"].render().endswith("\nSummary:")
    qa = builtins["passage-qa"]
    assert qa.variables == ["context", "question"] and qa.mode is None
    assert "Question: Why?" in qa.prompt({"question": "Why?"}, mode="chat").text


# -- runners without a model ---------------------------------------------------------


def test_scripted_runner_tokens_and_probabilities() -> None:
    runner = ScriptedRunner("s", "one two three four")
    for mode in ("chat", "raw"):
        prompt = p.Prompt("the quick fox", mode=mode)  # type: ignore[arg-type]
        tokenized = runner.tokenize(prompt, GenParams())
        assert len(tokenized.ids) == runner.count(prompt, GenParams()).n_tokens
    assert runner.tokenize(p.Prompt("a b", mode="raw"), GenParams()).pieces == ["a", " b"]
    events = list(runner.generate(p.Prompt("x"), GenParams(logprobs=3), 1))
    tokens = [e for e in events if isinstance(e, p.Token)]
    assert all(e.top and len(e.top) == 3 and e.top[0] == (e.text, e.logprob) for e in tokens)
    off = [e for e in runner.generate(p.Prompt("x"), GenParams(), 1) if isinstance(e, p.Token)]
    assert all(e.top is None and e.logprob is None for e in off)


def test_a_variant_runs_its_own_prompt_under_its_own_title() -> None:
    inner = ScriptedRunner("s", "ok", overhead=0)
    variant = VariantRunner(inner, "one-shot", p.Prompt("a b c", mode="raw"))
    assert variant.id == "s" and variant.header.title == "s · one-shot"
    assert variant.count(p.Prompt("ignored"), GenParams()).n_tokens == 3
    assert variant.tokenize(p.Prompt("ignored"), GenParams()).pieces == ["a", " b", " c"]
    variant.close()
    assert inner.closed


def test_the_token_view_shows_every_piece_safely() -> None:
    from workbench.cli_tokens import chips, visible

    assert visible(" a\tb\n") == "·a→b↵"
    assert visible("\x1b[2J\x07") == "␛[2J␇"
    view = chips(["<|im_start|>", "user", "\n", "Hi"], [1, 2, 3, 4]).plain
    assert view == "<|im_start|>:1│user:2│↵:3│\nHi:4"


# -- a llama.cpp server's token pieces ------------------------------------------------


class PiecesServer(BaseHTTPRequestHandler):
    """llama-server's /v1/models, /props, /apply-template and /tokenize with
    ``with_pieces`` (a piece that is not valid UTF-8 comes as a list of bytes)."""

    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _json(self, body: Any, status: int = 200) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/v1/models":
            self._json({"data": [{"id": "tiny.gguf", "meta": {"n_ctx_train": 2048}}]})
        elif self.path == "/props":
            self._json({"default_generation_settings": {"n_ctx": 1024}})
        else:
            self._json({"error": {"message": "File Not Found"}}, 404)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        if self.path == "/apply-template":
            self._json({"prompt": "<u>" + body["messages"][-1]["content"]})
        elif self.path == "/tokenize":
            assert body["with_pieces"] is True
            data = body["content"].encode()
            tokens = [{"id": n, "piece": data[n : n + 1].decode("utf-8", "strict")}
                      if data[n] < 0x80 else {"id": n, "piece": [data[n]]}
                      for n in range(len(data))]  # fmt: skip
            self._json({"tokens": tokens})
        else:
            self._json({"error": {"message": "File Not Found"}}, 404)


@pytest.fixture
def pieces_server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), PiecesServer)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def test_a_llama_cpp_server_shows_its_tokens(pieces_server: str) -> None:
    runner = RemoteRunner(parse_url(pieces_server))
    raw = runner.tokenize(p.Prompt("hi é", mode="raw"), GenParams())
    assert raw.ids == [0, 1, 2, 3, 4]
    assert raw.pieces == ["h", "i", " ", "<0xC3>", "<0xA9>"]
    chat = runner.tokenize(p.Prompt("ok"), GenParams())
    assert "".join(chat.pieces) == "<u>ok"


def test_other_backends_say_they_cannot_show_tokens() -> None:
    with pytest.raises(RunnerError, match="this backend cannot show its tokens"):
        Runner.tokenize(ScriptedRunner("b", "x"), p.Prompt("x"), GenParams())


# -- with the real model ----------------------------------------------------------------


@pytest.fixture(scope="module")
def smol(default_model_paths: dict[str, Path]) -> Iterator[LocalRunner]:
    runner = LocalRunner(build_catalog().get(SMOL))
    yield runner
    runner.close()


@pytest.mark.slow
def test_the_token_view_agrees_with_the_models_own_count(smol: LocalRunner) -> None:
    raw = p.Prompt("Hello world", mode="raw")
    tokenized = smol.tokenize(raw, GenParams())
    assert tokenized.pieces == ["Hello", " world"]
    assert tokenized.ids == [19556, 905]
    for prompt in (raw, p.Prompt("Hello world, 日本語 🌊", system="Be brief.")):
        tokenized = smol.tokenize(prompt, GenParams())
        assert len(tokenized.ids) == len(tokenized.pieces)
        assert len(tokenized.ids) == smol.count(prompt, GenParams()).n_tokens
    # Chat mode: the template's special tokens are spelled out, in order.
    joined = "".join(tokenized.pieces)
    assert joined.startswith("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n")
    assert "<0xE6>" in joined  # SmolLM2 spells 日 in two byte tokens


@pytest.mark.slow
def test_greedy_probabilities_put_the_chosen_token_first(smol: LocalRunner) -> None:
    prompt = p.Prompt("The capital of France is", mode="raw")
    events = list(smol.generate(prompt, GenParams(max_tokens=8, temperature=0, logprobs=5), 1))
    tokens = [e for e in events if isinstance(e, p.Token)]
    assert tokens and isinstance(events[-1], p.Done)
    for e in tokens:
        assert e.top is not None and e.logprob is not None and len(e.top) == 5
        assert e.top[0] == (e.text, e.logprob)
        probs = [math.exp(lp) for _, lp in e.top]
        assert all(0 < x <= 1 for x in probs) and sum(probs) <= 1 + 1e-9
        assert probs == sorted(probs, reverse=True)
    plain = [e for e in smol.generate(prompt, GenParams(max_tokens=8, temperature=0), 1)]
    text = "".join(e.text for e in plain if isinstance(e, p.Token))
    assert text == "".join(e.text for e in tokens)  # measuring changes nothing
    assert all(e.top is None for e in plain if isinstance(e, p.Token))
    # Sampling: the chosen token is measured before the sampler cuts the list.
    hot = GenParams(max_tokens=8, temperature=1.0, seed=3, logprobs=2)
    sampled = [e for e in smol.generate(prompt, hot, 1) if isinstance(e, p.Token)]
    assert all(e.top and e.logprob is not None and e.logprob <= e.top[0][1] for e in sampled)


# -- the CLI ------------------------------------------------------------------------------


def workbench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workbench", *args], capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_tokens_command_shows_each_models_tokens(default_model_paths: dict[str, Path]) -> None:
    out = workbench("tokens", "-m", SMOL, "--mode", "raw", "--show", "Hello world")
    assert out.returncode == 0, out.stderr
    assert "Hello│·world" in out.stdout and "OpenAI cl100k (reference)" in out.stdout
    assert "\x1b" not in out.stdout
    doc = json.loads(workbench("tokens", "-m", SMOL, "--mode", "raw", "--json", "Hi").stdout)
    assert doc["models"][0]["pieces"] == ["Hi"] and doc["reference"]["pieces"] == ["Hi"]


@pytest.mark.slow
def test_a_sweep_runs_a_panel_per_value_and_history_keeps_each(
    default_model_paths: dict[str, Path], workbench_home: Path
) -> None:
    out = workbench(
        "compare", "-m", SMOL, "-p", "Say hi.", "--max-tokens", "8",
        "--sweep", "temperature=0,0.7,1.2", "--json",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["sweep"] == {"setting": "temperature", "values": [0.0, 0.7, 1.2]}
    models = doc["models"]
    assert [m["params"]["temperature"] for m in models] == [0.0, 0.7, 1.2]
    assert [m["variant"] for m in models] == ["temperature=0", "temperature=0.7", "temperature=1.2"]
    assert all(m["error"] is None and m["text"] and m["params"]["max_tokens"] == 8 for m in models)
    with Store.open() as store:
        run_id = store.latest_run_id()
        assert run_id is not None
        run = store.get_run(run_id)
    assert run is not None and len(run.panels) == 3
    assert [panel.params["temperature"] for panel in run.panels] == [0.0, 0.7, 1.2]
    assert all(panel.model.id == SMOL for panel in run.panels)
    assert run.panels[1].model.title.endswith("· temperature=0.7")


@pytest.mark.slow
def test_compare_runs_few_shot_variants_with_probabilities(
    default_model_paths: dict[str, Path],
) -> None:
    out = workbench(
        "compare", "-m", SMOL, "--template", "sentiment", "--shots", "0,1",
        "--set", "input=I loved it.", "--max-tokens", "2", "--temperature", "0",
        "--logprobs", "2", "--json",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["template"]["name"] == "sentiment" and doc["template"]["shots"] == [0, 1]
    zero, one = doc["models"]
    assert (zero["variant"], one["variant"]) == ("zero-shot", "one-shot")
    assert zero["prompt"]["mode"] == "raw"
    assert zero["prompt"]["text"].endswith("Review: I loved it.\nSentiment:")
    assert one["prompt"]["text"].count("Sentiment:") == 2
    for m in (zero, one):
        assert m["logprobs"] and "".join(x["text"] for x in m["logprobs"]) == m["text"]
        assert all(len(x["top"]) == 2 for x in m["logprobs"])
