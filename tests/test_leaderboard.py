"""`medeval leaderboard`: markdown table, reported rows, escaping, HTML (real headless Chromium), charts."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from medeval.reporting import board as L
from medeval.reporting.presets import load_preset
from medeval.results import read_results
from conftest import dump_dom, invoke, needs_chromium
from results_factory import TaskSpec, mask_with_accuracy, medqa_golds, preds_from_mask, write_run

ROOT = Path(__file__).resolve().parents[1]
CARD = ROOT / "leaderboard" / "reported" / "neeto_card.yaml"
TASKS = ["medqa", "medmcqa", "pubmedqa", "mmlu_clinical_knowledge", "mmlu_medical_genetics", "mmlu_anatomy",
         "mmlu_professional_medicine", "mmlu_college_biology", "mmlu_college_medicine"]
EVIL = "evil|<script>alert(1)</script>"


@pytest.fixture(scope="module")
def app(report_app):
    return report_app


def make_run(path: Path, model: str, accs: dict, n: int = 100, sc: bool = False) -> Path:
    golds = medqa_golds(n)
    specs = {}
    for i, (task, acc) in enumerate(accs.items()):
        preds = preds_from_mask(golds, mask_with_accuracy(n, acc, seed=i))
        sc_preds = preds_from_mask(golds, mask_with_accuracy(n, min(acc + 0.05, 1.0), seed=i + 99)) if sc else None
        specs[task] = TaskSpec(golds, preds, sc_preds=sc_preds)   # full runs: n = n_total
    return write_run(path, model, specs)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("runs")
    full = make_run(tmp / "a", "org/full-model", dict(zip(TASKS, [.60, .50, .70, .65, .70, .60, .62, .70, .60])),
                    sc=True)
    # no pubmedqa; best MedQA of the measured rows; lowest Average
    partial = make_run(tmp / "b", EVIL, {t: a for t, a in zip(TASKS, [.95, .40, 0, .50, .50, .50, .50, .50, .50])
                                         if t != "pubmedqa"}, sc=True)
    return full, partial


def rows_of(md: str) -> list[list[str]]:
    """Table rows split on unescaped pipes (an escaped \\| inside a name must not split a cell)."""
    out = []
    for line in md.splitlines():
        if line.startswith("| ") and not line.startswith("| :---"):
            out.append([c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]])
    return out


def test_markdown_table_with_reported_rows(app, runs, tmp_path):
    out = tmp_path / "lb" / "README.md"
    res = invoke(app, "leaderboard", *runs, "-o", out, "--preset", "neeto", "--reported", CARD)
    assert res.exit_code == 0, res.output
    md = out.read_text()
    table = rows_of(md)
    assert table[0] == ["Model", "Average", "MedQA", "MedMCQA", "PubMedQA", "MMLU.ck", "MMLU.mg", "MMLU.an",
                        "MMLU.pm", "MMLU.cb", "MMLU.cm"]
    assert all(len(r) == 11 for r in table)  # the malicious name did not add a column
    by_name = {r[0]: r for r in table[1:]}
    full, evil = by_name["org/full-model"], by_name[r"evil\|&lt;script&gt;alert(1)&lt;/script&gt;"]
    neeto = by_name["Neeto-1.0-8b †"]
    # measured rows: accuracy in %, 2 decimals; the full run's Average is the plain mean of its 9 columns
    assert full[2] == "60.00" and full[1] == f"{np.mean([60, 50, 70, 65, 70, 60, 62, 70, 60]):.2f}"
    # missing cell is '-', partial Average is over the 8 available columns and marked
    assert evil[4] == "-" and evil[1] == f"{np.mean([95, 40, 50, 50, 50, 50, 50, 50]):.2f}\\*"
    # bold best per column (measured MedQA 95 beats the card's 87.8; the card wins MedMCQA)
    assert evil[2] == "**95.00**" and neeto[2] == "87.80" and neeto[3] == "**66.20**"
    # the card's cells as printed (shared/seeds/neeto-1.0-8b-card.md); the Average is recomputed
    assert [c.strip("*") for c in neeto[2:]] == ["87.80", "66.20", "79.00", "79.40", "90.10", "79.10", "95.60",
                                                 "81.40", "78.60"]
    assert neeto[1] == "**81.91**" and by_name["Internist-7B †"][9] == "-"
    assert by_name["Internist-7B †"][1] == "67.79\\*"  # the card's own Internist average, same rule
    # the printed Average that its cells cannot explain is flagged, with the computation; no other row is
    flagged = [line for line in md.splitlines() if "the source prints Average" in line]
    assert len(flagged) == 1 and flagged[0].startswith("Neeto-1.0-8b: the source prints Average 87.87; this "
                                                       "table recomputes 81.91")
    assert "= 737.20, / 9 = 81.91" in flagged[0]
    # sorted by Average, descending
    avgs = [float(r[1].strip("*\\")) for r in table[1:]]
    assert avgs == sorted(avgs, reverse=True)
    # reported rows are marked and cited; the rule is stated
    assert "† Reported, not measured by medeval" in md and "https://huggingface.co/S4nfs/Neeto-1.0-8b" in md
    assert "Average: unweighted mean of the column scores" in md and "averaged over the columns it has" in md
    # no raw HTML from the model name anywhere
    assert "<script>" not in md and "alert(1)&lt;/script&gt;" in md


def test_modes_ci_and_weighted_average(app, runs, tmp_path):
    out = tmp_path / "README.md"
    res = invoke(app, "leaderboard", *runs, "-o", out, "--preset", "neeto", "--mode", "both", "--ci", "--no-html", "--no-charts")
    assert res.exit_code == 0, res.output
    row = next(r for r in rows_of(out.read_text()) if r[0] == "org/full-model")
    greedy, sc = row[5].split(" / ")  # MMLU.ck: greedy 65, sc 70 (the best sc value of the column)
    assert re.fullmatch(r"\*\*65\.00\*\* \(\d+\.\d\d–\d+\.\d\d\)", greedy) and sc.startswith("**70.00** (")
    assert not (tmp_path / "index.html").exists() and not (tmp_path / "charts").exists()
    # the card reports greedy scores only: with --mode sc its rows are left out and named in a note
    res = invoke(app, "leaderboard", *runs, "-o", out, "--preset", "neeto", "--mode", "sc", "--reported", CARD, "--no-html", "--no-charts")
    md = out.read_text()
    assert res.exit_code == 0 and len(rows_of(md)) == 3
    note = next(line for line in md.splitlines() if line.startswith("Not shown (no score for these columns in sc"))
    assert "Neeto-1.0-8b †" in note and note.count("†") == 8
    # weighted by n: give one column more items and check against a direct computation
    runs_w = [read_results(r) for r in runs]
    runs_w[0].tasks["medqa"]["metrics"]["greedy"]["accuracy"]["n"] = 300
    board = L.build(runs_w, load_preset("neeto"), ("greedy",), "weighted")
    got = next(r for r in board.rows if r.label == "org/full-model").averages["greedy"]
    vals, ns = [.60, .50, .70, .65, .70, .60, .62, .70, .60], [300] + [100] * 8
    assert got[0] == pytest.approx(np.average(vals, weights=ns)) and got[1] == 9


def test_user_preset_metric_and_printed_average_note(app, runs, tmp_path):
    preset = tmp_path / "mine.yaml"
    preset.write_text("title: Mine\ncolumns:\n  - {name: 'Med|QA', task: medqa, metric: accuracy}\n"
                      "  - {name: MCQ, task: medmcqa}\n")
    rep = tmp_path / "rep.yaml"
    rep.write_text("source: {title: Some paper, url: 'https://example.org/x'}\nverified: true\n"
                   "models:\n  - {name: Paper-7B, average: 99.0, scores: {medqa: 50.0, medmcqa: 70.0}}\n")
    out = tmp_path / "README.md"
    res = invoke(app, "leaderboard", *runs, "-o", out, "--preset", preset, "--reported", rep, "--no-charts")
    assert res.exit_code == 0, res.output
    md = out.read_text()
    assert md.startswith("# Mine") and rows_of(md)[0] == ["Model", "Average", r"Med\|QA", "MCQ"]
    assert "Paper-7B: the source prints Average 99.00; this table recomputes 60.00" in md
    assert "not yet checked" not in md  # verified: true


def test_bad_inputs_exit_2(app, runs, tmp_path):
    nosrc = tmp_path / "nosrc.yaml"
    nosrc.write_text("models: [{name: X, scores: {medqa: 50}}]\n")
    cases = [(["--preset", "nope"], "preset 'nope'"), (["--reported", nosrc], "'source'"),
             ([tmp_path / "missing"], "not found")]
    for extra, message in cases:
        res = invoke(app, "leaderboard", runs[0], "-o", tmp_path / "x.md", *extra)
        assert res.exit_code == 2 and message in res.output and "Traceback" not in res.output, res.output
    assert invoke(app, "leaderboard", runs[0], runs[0], "-o", tmp_path / "x.md", "--preset", "neeto", "--no-charts").exit_code == 0


def test_runs_of_one_model_merge_or_split(app, runs, tmp_path):
    extra = make_run(tmp_path / "extra", "org/small", {"medqa": .5})
    other = make_run(tmp_path / "other", "org/small", {"pubmedqa": .6})
    again = make_run(tmp_path / "again", "org/small", {"medqa": .7})
    out = tmp_path / "x.md"
    assert invoke(app, "leaderboard", extra, other, again, "-o", out, "--preset", "neeto", "--no-charts", "--no-html").exit_code == 0
    rows = {r[0]: r for r in rows_of(out.read_text())[1:]}
    # disjoint tasks merge into one row; a second medqa run of the same model becomes its own row
    assert set(rows) == {"org/small (extra+other)", "org/small (again)"}
    assert rows["org/small (extra+other)"][2:5] == ["50.00", "-", "**60.00**"]  # sole PubMedQA value: best
    assert rows["org/small (again)"][2] == "**70.00**"


def test_charts_written(app, runs, tmp_path):
    out = tmp_path / "README.md"
    assert invoke(app, "leaderboard", *runs, "-o", out, "--preset", "neeto", "--no-html").exit_code == 0
    pngs = sorted((tmp_path / "charts").glob("*.png"))
    assert [p.stem for p in pngs] == sorted(TASKS)
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000 for p in pngs)
    assert "![MedQA](charts/medqa.png)" in out.read_text()


CLICK = "<script>document.querySelector('th[data-col=\"MedQA\"]').click();</script></body>"


@needs_chromium
def test_html_sorts_in_headless_chromium(app, runs, tmp_path):
    out = tmp_path / "README.md"
    assert invoke(app, "leaderboard", *runs, "-o", out, "--preset", "neeto", "--reported", CARD, "--no-charts").exit_code == 0
    page = (tmp_path / "index.html").read_text()
    assert "<script>alert" not in page and "evil|&lt;script&gt;alert(1)&lt;/script&gt;" in page
    clicked = tmp_path / "clicked.html"
    clicked.write_text(page.replace("</body>", CLICK))
    dom = dump_dom(clicked.as_uri())
    body = dom[dom.index("<tbody>"):dom.index("</tbody>")]
    names = re.findall(r'<tr[^>]*><td data-v="([^"]*)"', body)
    medqa = [float(v) if v else -1 for v in re.findall(r'<tr[^>]*>(?:<td[^>]*>.*?</td>){2}<td data-v="([^"]*)"', body)]
    assert len(names) == 10 and medqa == sorted(medqa, reverse=True)  # sorted by MedQA after the click
    assert names[0] == "evil|&lt;script&gt;alert(1)&lt;/script&gt;" and names[1] == "Neeto-1.0-8b"
    assert 'aria-sort="descending"' in dom and dom.count("<script") == 2  # ours + the click; none injected


SEEDS = ROOT.parent / "shared" / "seeds"
II_COLS = ["medmcqa", "medqa", "pubmedqa_pqal1000", "mmlu_pro_medical", "gpqa_medical", "lancet", "medbullets_op4",
           "medbullets_op5", "medxpertqa", "nejm"]
NEETO_COLS = ["medqa", "medmcqa", "pubmedqa", "mmlu_clinical_knowledge", "mmlu_medical_genetics", "mmlu_anatomy",
              "mmlu_professional_medicine", "mmlu_college_biology", "mmlu_college_medicine"]


def _card_rows(text: str, first_col: int, n: int) -> dict:
    """{model: its n number cells} from the markdown table rows of a seed card."""
    out = {}
    for line in text.replace("| |", "|\n|").splitlines():
        cells = [c.strip().strip("*") for c in line.strip().strip("|").split("|")]
        nums = cells[first_col + 1:first_col + 1 + n]
        if len(nums) == n and all(re.fullmatch(r"\d+(\.\d+)?|-", c) for c in nums):
            out[re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", cells[first_col]).strip("* ")] = nums
    return out


def test_reported_rows_match_the_seed_cards():
    """Every reported cell and printed Average equals the seed card's, as printed."""
    ii = _card_rows((SEEDS / "ii-medical-8b-card.md").read_text(), 0, 11)
    rep = yaml.safe_load((ROOT / "leaderboard" / "reported" / "ii_medical_8b_card.yaml").read_text())
    assert [m["name"] for m in rep["models"]] == list(ii) and len(ii) == 8
    for m in rep["models"]:
        cells = ii[m["name"]]   # ten columns then Avg
        assert [m["scores"][t] for t in II_COLS] == [float(c) for c in cells[:10]], m["name"]
        assert m["average"] == float(cells[10])
    neeto = _card_rows((SEEDS / "neeto-1.0-8b-card.md").read_text(), 1, 10)   # Released Date | Model | Average | ...
    rep = yaml.safe_load(CARD.read_text())
    assert [m["name"] for m in rep["models"]] == list(neeto) and len(neeto) == 8
    for m in rep["models"]:
        avg, *cells = neeto[m["name"]]
        assert m["average"] == float(avg)
        assert [m["scores"][t] for t in NEETO_COLS] == [None if c == "-" else float(c) for c in cells], m["name"]


def test_ii_medical_preset_flags_printed_averages(app, runs, tmp_path):
    """The preset lays out the card's ten columns in sc mode; three printed Averages are flagged."""
    out = tmp_path / "README.md"
    res = invoke(app, "leaderboard", *runs, "-o", out, "--preset", "ii_medical", "--no-charts", "--no-html",
                 "--reported", ROOT / "leaderboard" / "reported" / "ii_medical_8b_card.yaml")
    assert res.exit_code == 0, res.output
    md = out.read_text()
    table = rows_of(md)
    assert table[0] == ["Model", "Average", "MedMC", "MedQA", "PubMed", "MMLU-P", "GPQA", "Lancet", "MedB-4",
                        "MedB-5", "MedX", "NEJM"]
    assert [r[0] for r in table[1:4]] == ["HuatuoGPT-o1-72B †", "QWQ 32B †", "II-Medical-8B †"]
    flagged = sorted(line.split(":")[0] for line in md.splitlines() if "the source prints Average" in line)
    assert flagged == ["II-Medical-8B", "II-Medical-8B-SFT", "Med-reason"]
    assert "Protocol: prompt asks to" in md and "(sc decoding, sample\\_accuracy)" in md


def test_ii_medical_7b_preview_rows_match_its_card():
    """That card prints one cell per line ('69.42 |'); its two own rows are in the reported file."""
    text = (SEEDS / "ii-medical-7b-preview-card.md").read_text().splitlines()
    lines = [l.strip()[:-1].strip() if l.strip().endswith("|") else None for l in text]   # table cells only
    rep = yaml.safe_load((ROOT / "leaderboard" / "reported" / "ii_medical_7b_preview_card.yaml").read_text())
    assert [m["name"] for m in rep["models"]] == ["II-Medical-7B-Preview-Wo-RL", "II-Medical-7B-Preview"]
    for m in rep["models"]:
        at = lines.index(m["name"])
        cells = [float(c) for c in lines[at + 1:at + 12]]
        assert [m["scores"][t] for t in II_COLS] == cells[:10] and m["average"] == cells[10]


def test_bold_follows_the_metric_direction(monkeypatch, tmp_path):
    """A lower-is-better metric (an error rate, registered for this test only) bolds the lowest value."""
    from medeval import metrics as M
    from medeval.reporting.markdown import to_markdown

    item = lambda p, g, **_: float(p is None or p != g)
    monkeypatch.setitem(M.REGISTRY, "error_rate", M.Metric(
        "error_rate", lambda ps, gs, **_: float(np.mean([item(p, g) for p, g in zip(ps, gs)])), item=item,
        higher_is_better=False))
    golds = medqa_golds(100)
    spec = dict(primary_metric="error_rate", metrics=("error_rate",))
    runs = [read_results(write_run(tmp_path / name, name, {"medqa": TaskSpec(
        golds, preds_from_mask(golds, mask_with_accuracy(100, acc, seed=1)), **spec)}))
        for name, acc in (("good", 0.8), ("bad", 0.6))]
    preset = tmp_path / "p.yaml"
    preset.write_text("title: Errors\ncolumns:\n  - {name: MedQA, task: medqa}\n")
    md = to_markdown(L.build(runs, load_preset(str(preset))))
    cells = {r[0]: r[2] for r in rows_of(md)[1:]}
    assert cells["good"] == "**20.00**" and cells["bad"] == "40.00"   # the lower error rate is the best
