"""The word diff behind the app's diff view (engine/history/diff.py)."""

from __future__ import annotations

from itertools import pairwise

import pytest

from workbench.engine.history.diff import Chunk, tokens, word_diff


def kinds(old: str, new: str) -> list[tuple[str, str]]:
    return [(c.kind, c.text) for c in word_diff(old, new).chunks]


def test_identical_texts_are_one_same_chunk() -> None:
    diff = word_diff("The sky is blue.", "The sky is blue.")
    assert diff.chunks == (Chunk("same", "The sky is blue."),)
    assert diff.identical and diff.summary() == "identical"
    assert diff.marked() == "The sky is blue."


def test_two_empty_texts() -> None:
    diff = word_diff("", "")
    assert diff.chunks == () and diff.identical and diff.marked() == ""


def test_an_insertion() -> None:
    assert kinds("The sky is blue.", "The sky is very blue.") == [
        ("same", "The sky is "),
        ("added", "very "),
        ("same", "blue."),
    ]
    diff = word_diff("The sky is blue.", "The sky is very blue.")
    assert diff.marked() == "The sky is {+very +}blue."
    assert diff.summary() == "5 words the same, 0 removed, 1 added"


def test_a_deletion() -> None:
    diff = word_diff("red, green and blue", "red and blue")
    assert diff.marked() == "red[-, green-] and blue"
    assert (diff.words("removed"), diff.words("added")) == (2, 0)


def test_a_replacement_is_removed_then_added() -> None:
    assert kinds("The capital is Paris.", "The capital is Lyon.") == [
        ("same", "The capital is "),
        ("removed", "Paris"),
        ("added", "Lyon"),
        ("same", "."),
    ]
    assert word_diff("a b c", "a x y c").marked() == "a [-b-]{+x y+} c"


def test_everything_new_or_everything_gone() -> None:
    assert word_diff("", "new text").marked() == "{+new text+}"
    assert word_diff("old text", "").marked() == "[-old text-]"
    assert word_diff("", "new text").summary() == "0 words the same, 0 removed, 2 added"


def test_whitespace_changes_are_kept_and_named() -> None:
    diff = word_diff("a b", "a  b")
    assert diff.marked() == "a[- -]{+  +}b"
    assert not diff.identical and diff.summary() == "only whitespace differs"
    # A run of whitespace is one token: one newline becoming two is a replacement.
    lines = word_diff("line one\nline two", "line one\n\nline 2")
    assert lines.marked() == "line one[-\n-]{+\n\n+}line [-two-]{+2+}"


def test_punctuation_is_its_own_token_and_words_keep_their_spaces_apart() -> None:
    assert tokens("Hi, there!  Done...") == ["Hi", ",", " ", "there", "!", "  ", "Done", "..."]
    assert "".join(tokens("a\tb\n c")) == "a\tb\n c"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("", ""),
        ("same", "same"),
        ("The quick brown fox", "The slow brown dog jumps"),
        ("  leading and trailing  ", "leading and trailing"),
        ("é café naïve — ok", "e cafe naive - ok"),
        ("one\ntwo\nthree\n", "one\n2\nthree\nfour\n"),
    ],
)
def test_each_side_rebuilds_exactly(old: str, new: str) -> None:
    diff = word_diff(old, new)
    assert diff.side("old") == old and diff.side("new") == new
    kinds = [c.kind for c in diff.chunks]
    assert all(a != b for a, b in pairwise(kinds))  # neighbours of one kind are merged


def test_long_texts_still_line_up() -> None:
    # With difflib's autojunk on, the space (over 1% of 200+ tokens) would be
    # junk and this diff would fall apart into one big replacement.
    words = [f"w{i}" for i in range(400)]
    old = " ".join(words)
    new = " ".join([*words[:200], "CHANGED", *words[201:]])
    diff = word_diff(old, new)
    assert diff.words("removed") == 1 and diff.words("added") == 1
    assert "[-w200-]{+CHANGED+}" in diff.marked()
