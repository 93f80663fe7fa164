"""Progress lines off a terminal: MEDEVAL_PROGRESS_SECONDS is read as a positive number or named once."""
import io

import pytest

from medeval import progress


@pytest.mark.parametrize("raw", ["abc", "0", "-5", "inf"])
def test_a_bad_interval_is_named_once_with_the_fix_and_30_s_is_used(raw, monkeypatch):
    monkeypatch.setattr(progress, "_warned", set())
    monkeypatch.setenv(progress.ENV_SECONDS, raw)
    err = io.StringIO()
    assert progress.seconds_between_lines(err) == 30.0
    assert progress.seconds_between_lines(err) == 30.0
    assert err.getvalue().count("\n") == 1
    assert f"MEDEVAL_PROGRESS_SECONDS={raw!r} is not a positive number of seconds" in err.getvalue()
    assert "fix: export MEDEVAL_PROGRESS_SECONDS=30" in err.getvalue()


def test_a_good_interval_is_used_silently(monkeypatch):
    monkeypatch.setenv(progress.ENV_SECONDS, "2.5")
    err = io.StringIO()
    assert progress.seconds_between_lines(err) == 2.5
    monkeypatch.delenv(progress.ENV_SECONDS)
    assert progress.seconds_between_lines(err) == 30.0
    assert err.getvalue() == ""


def test_phase_lines_follow_the_interval(monkeypatch):
    monkeypatch.setenv(progress.ENV_SECONDS, "1000")
    out = io.StringIO()
    with progress.Phase("generating", 20, True, stream=out) as advance:
        for _ in range(20):
            advance()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("medeval: generating 0/20 (0%)") and lines[-1].startswith("medeval: generating 20/20 (100%)")
    shown = [int(x.split()[2].split("/")[0]) for x in lines]
    assert shown == list(range(0, 21, 2)), lines   # the first, then every 10% (2 items): the 1000 s interval never fires
