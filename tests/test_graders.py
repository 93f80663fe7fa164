"""One grader interface: every grader is a `Grader` returning `Verdict`s, answer types alone say which
grader a task gets, and the counting and token accounting live once (graders/base.py, graders/chat.py).

The model graders run against FAKE loopback judges (tests/test_judge.py, tests/test_extract_judge.py);
the outputs they grade are FAKE too (made-up differentials and replies); the rows are real data.
"""
import ast
import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest

import medeval.graders as graders_pkg
from medeval.accounting import run_usage
from medeval.graders.base import Case, Grader, Verdict
from medeval.graders.extract_judge import ExtractJudge
from medeval.graders.judge import LexicalJudge
from medeval.graders.registry import GRADERS, Graders
from medeval.runs.prepare import prepare
from medeval.runs.runner import RunConfig
from medeval.scoring.inputs import ScoringInput
from medeval.scoring.score import score_items
from medeval.tasks import answer_types
from medeval.tasks.answer_types import AnswerType
from medeval.tasks.spec import Registry

from test_judge import SECRET, SERVED, FakeJudgeServer

GRADER_CLASSES = [*GRADERS.values(), LexicalJudge, ExtractJudge]


@pytest.mark.parametrize("cls", GRADER_CLASSES, ids=lambda c: c.__name__)
def test_every_grader_implements_the_one_interface(cls):
    assert issubclass(cls, Grader) and not inspect.isabstract(cls)
    for method in ("prefetch", "grade", "summary"):
        assert callable(getattr(cls, method))
    # the summary and the tallying are the base's: a grader declares COUNTS/NOTES, it does not write them
    assert "summary" not in vars(cls) and "grade" not in vars(cls)


def test_no_grader_counts_or_sums_tokens_itself():
    """Counting lives in Grader.grade (verdict tallies) and ChatGrader (replies, tokens), nowhere else."""
    pkg = Path(graders_pkg.__file__).parent
    for path in sorted(pkg.glob("*.py")):
        if path.name in ("base.py", "chat.py"):
            continue
        tree = ast.parse(path.read_text())
        counted = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.AugAssign)
                   and isinstance(n.target, ast.Subscript) and "counts" in ast.unparse(n.target)]
        assert not counted, f"{path.name}:{counted}: a grader tallies by hand; return the tallies in its Verdict"
        assert "prompt_tokens" not in path.read_text(), f"{path.name}: token accounting belongs to ChatGrader.usage"


def test_answer_types_declare_their_grading():
    for name in answer_types.names():
        at = answer_types.get(name)
        assert at.grader is None or at.grader in GRADERS, name
        if at.extract_judged:   # the extraction judge and the self-answer need the allowed answers
            assert type(at).choices is not AnswerType.choices, name
    assert {n for n in answer_types.names() if answer_types.get(n).grader} == {"diagnosis", "rubric"}
    assert {n for n in answer_types.names() if answer_types.get(n).extract_judged} == {"choice", "yesno", "label"}


@pytest.fixture
def judge_server(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with FakeJudgeServer(model_name=SERVED, api_key=SECRET) as s:
        yield s


def test_one_graders_counts_add_up_per_task_and_its_tokens_reach_the_run_usage(judge_server, data_dir, tmp_path):
    task = Registry().tasks["cupcase"]
    cfg = RunConfig(tasks=[], data_dir=str(data_dir), judge=SERVED, judge_base_url=judge_server.url,
                    cache_dir=str(tmp_path / "cache"))
    p = prepare(task, cfg)
    graders = Graders(cfg, [task])
    blocks, verdicts = {}, {}
    for part, items in (("a", p.items[:3]), ("b", p.items[3:5])):
        q = p.select({it.id for it in items})
        outputs = [f"1. Migraine\n2. {q.items[0].gold}", "1. Gout", ""][:len(q.items)]   # FAKE differentials
        texts = ScoringInput.of_texts(["greedy"], {"greedy": {it.id: [o] for it, o in zip(q.items, outputs)}})
        judge = graders.for_task(task)
        blocks[part] = score_items(q, texts, tmp_path / part, judge=judge)
        rows = [json.loads(line) for line in (tmp_path / part / f"samples_{task.name}.jsonl").open()]
        verdicts[part] = [r["greedy"]["judge"]["verdict"] for r in rows]
    graders.close()
    assert verdicts == {"a": ["match", "no match", "no differential"], "b": ["match", "no match"]}
    a, b = blocks["a"]["judge"], blocks["b"]["judge"]
    assert (a["calls"], a["no_differential"], a["unparseable"]) == (2, 1, 0)   # each task counts its own
    assert (b["calls"], b["no_differential"]) == (2, 0)
    assert a["usage"]["requests"] == 2 and a["usage"]["prompt_tokens"] > 0 and a["usage"]["requests_without_usage"] == 0
    run = run_usage(blocks, None, {}, "m", None)["judge"][SERVED]
    for k in ("requests", "prompt_tokens", "completion_tokens"):
        assert run[k] == a["usage"][k] + b["usage"][k]


def test_a_verdict_is_tallied_once_by_the_base():
    lexical = LexicalJudge()
    v = lexical.grade(Case(["Pulmonary tuberculosis"], "Tuberculosis, pulmonary"))
    assert isinstance(v, Verdict) and v.value == 1 and v.status == "match" and v.record["verdict"] == "match"
    lexical.grade(Case(None, "x"))
    assert lexical.counts == {"match": 1, "no_differential": 1}
    assert lexical.summary() == {"judge": "lexical-fallback", "note": "not the paper's metric",
                                 "threshold": lexical.summary()["threshold"]}
    with pytest.raises(Exception):
        v.value = 2   # frozen


NEW_TYPES = '''
import json, sys
from pathlib import Path
from medeval.tasks.answer_types import AnswerType, register
from medeval.tasks.answer_types.open_ended import Diagnosis

@register
class OneLineDdx(Diagnosis):        # a made-up type: a differential on one line, graded like a diagnosis
    name = "ddx_line"
    def outcome(self, task, text, row, options, finish_reason=None):
        from medeval.tasks.extract import INVALID, Outcome
        got = [e.strip() for e in (text or "").split(";") if e.strip()]
        return Outcome(got, "answer") if got else INVALID

@register
class Ungraded(OneLineDdx):
    name = "ddx_ungraded"
    grader = None

@register
class Unknown(OneLineDdx):
    name = "ddx_unknown"
    grader = "no-such-grader"

from medeval.metrics import metric

@metric("ranked_first", item=lambda p, g, **_: float(p == 1),
        answer_types=("ddx_line", "ddx_ungraded", "ddx_unknown"))
def ranked_first(preds, golds, **_):
    "Share of items whose rank is 1"
    return sum(p == 1 for p in preds) / len(preds)

from medeval.errors import MedevalError
from medeval.graders.registry import Graders
from medeval.runs.prepare import prepare
from medeval.runs.runner import RunConfig
from medeval.scoring.inputs import ScoringInput
from medeval.scoring.score import score_items
from medeval.tasks.spec import Registry

d = Path(sys.argv[1])
reg = Registry([d])
out = {}
cfg = RunConfig(tasks=[], data_dir=str(d), judge="none")
for name in ("graded", "ungraded"):
    task = reg.tasks[name]
    g = Graders(cfg, [task])
    judge = g.for_task(task)
    p = prepare(task, cfg)
    texts = ScoringInput.of_texts(["greedy"], {"greedy": {it.id: [t] for it, t in zip(p.items, ["Gout; Sepsis", "Asthma"])}})
    res = score_items(p, texts, d / name, judge=judge)
    rows = [json.loads(l) for l in (d / name / f"samples_{name}.jsonl").open()]
    out[name] = {"grader": type(judge).__name__, "summary": res.get("judge", {}).get("judge"),
                 "preds": [r["greedy"]["pred"] for r in rows]}
try:
    Graders(cfg, [reg.tasks["unknown"]])
except MedevalError as e:
    out["unknown"] = str(e)
print(json.dumps(out))
'''


def test_the_answer_types_declaration_alone_picks_the_grader(tmp_path):
    """FAKE data (invented cases): new answer types registered in a fresh process; the one that says
    `grader = "diagnosis"` gets the diagnosis grader (lexical under --judge none), the one that says
    None gets none, and an unknown grader name is a one-line error naming the registry."""
    rows = [{"id": "c0", "case": "Invented case one.", "dx": "Gout"}, {"id": "c1", "case": "Invented case two.", "dx": "Migraine"}]
    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "case.jinja").write_text("{{ doc.case }}")
    for name, kind in (("graded", "ddx_line"), ("ungraded", "ddx_ungraded"), ("unknown", "ddx_unknown")):
        (tmp_path / f"{name}.yaml").write_text(
            f"name: {name}\nversion: 1\ndataset: {{local: cases/test.jsonl, id_field: id}}\n"
            f"prompt: {{template: case.jinja}}\nanswer: {{type: {kind}, gold: dx, gold_format: text}}\n"
            "metrics: [ranked_first]\n")
    proc = subprocess.run([sys.executable, "-c", NEW_TYPES, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["graded"] == {"grader": "LexicalJudge", "summary": "lexical-fallback", "preds": [1, None]}
    assert got["ungraded"]["grader"] == "NoneType" and got["ungraded"]["summary"] is None
    assert got["ungraded"]["preds"] == [["Gout", "Sepsis"], ["Asthma"]]   # the differential itself: no rank
    assert "'no-such-grader'" in got["unknown"] and "GRADERS" in got["unknown"]


def test_score_refuses_a_task_whose_answers_need_a_grader(tmp_path, data_dir):
    """`medeval score` runs no grader: a rubric task scored from bare outputs was a silent 0.0 before."""
    from medeval.errors import MedevalError
    from medeval.runs.score_external import score_file

    row = json.loads((data_dir / "healthbench" / "sample.jsonl").open().readline())
    preds = tmp_path / "p.jsonl"
    preds.write_text(json.dumps({"id": row["prompt_id"], "output": "FAKE reply"}) + "\n")
    with pytest.raises(MedevalError, match="graded by the rubric grader"):
        score_file("healthbench", preds, tmp_path / "out", "m", data_dir)
    assert not (tmp_path / "out" / "results.json").exists()
