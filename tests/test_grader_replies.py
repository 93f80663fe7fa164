"""Grader replies (issue 22): a verdict is never read from inside an unfinished <think> block."""
from __future__ import annotations

import pytest

from medeval.graders.chat import after_thinking
from medeval.graders.extract_judge import parse_choice
from medeval.graders.judge import parse_verdict
from medeval.graders.rubric import parse_met


@pytest.mark.parametrize("reply,kept", [
    ("<think>weighing</think> B", "B"),
    ("reasoning the template opened</think>B", "B"),
    ("<THINK>a</THINK>x", "x"),
    ("<think>maybe {\"rank\": 2} fits, but", ""),
    ("B <think>on second thought", "B"),
])
def test_after_thinking_drops_an_unclosed_block(reply, kept):
    assert after_thinking(reply).strip() == kept


def test_no_verdict_is_read_from_unfinished_reasoning():
    # cut off mid-reasoning (max_tokens): each grader's reply holds a verdict only inside <think>
    assert parse_verdict('<think>The differential lists it first, so {"rank": 1, "reasoning": "x"} ... but', 3) \
        == (None, None)
    assert parse_met('<think>Checking the rubric: {"criteria_met": true} seems likely, although') is None
    assert parse_choice("<think>B", ["A", "B", "C"]) is None
    # a finished block still gives its verdict after it
    assert parse_verdict('<think>hmm</think>{"rank": 1, "reasoning": "first"}', 3) == (1, "first")
    assert parse_met('<think>a</think>{"criteria_met": false}') is False
