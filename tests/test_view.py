"""`medeval view` and `gate --html`: self-contained pages, rendered and driven in headless Chromium.

Runs are SYNTHETIC (tests/results_factory.py: planted right/wrong/invalid/truncated items, made-up
prompts) so every expected row is known; the comparison uses real MedQA gold answers with planted
predictions. The browser is Debian's real chromium; tests that need it skip where it is absent.
"""
from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import pytest

from medeval.reporting import view as V
from conftest import chromium, dump_dom, invoke, needs_chromium
from results_factory import TaskSpec, mask_with_accuracy, medqa_golds, preds_from_mask, synthetic_run, write_run

EVIL = "<script>document.title='PWNED'</script><img src=x onerror=\"document.title='PWNED'\"> & </script>"
ITEM_ROW = re.compile(r'<tr class="item" data-id="([^"]+)"')


@pytest.fixture(scope="module")
def app(report_app):
    return report_app


@pytest.fixture(scope="module")
def run_page(app, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("view")
    expect = synthetic_run(tmp / "run", 240, k=3, evil={7: EVIL})
    page = tmp / "page.html"
    res = invoke(app, "view", tmp / "run", "-o", page)
    assert res.exit_code == 0, res.output
    return page, expect


def rows(dom: str) -> list[str]:
    return ITEM_ROW.findall(dom)


def data_of(page: str) -> dict:
    block = re.search(r'<script type="application/json" id="medeval-data">(.*?)</script>', page, re.S).group(1)
    return json.loads(block)


def test_page_is_self_contained_and_data_cannot_break_out(run_page):
    page, expect = run_page
    text = page.read_text(encoding="utf-8")
    assert text.count("<script") == 2 and text.count("</script>") == 2   # the data block and the code, no more
    assert "<script>document.title" not in text and "<img" not in text
    assert re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text) is None and "<link" not in text
    assert "@import" not in text and "url(" not in text
    assert "default-src 'none'" in text    # the Content-Security-Policy forbids any request
    data = data_of(text)                   # escaping changes nothing in the data itself
    items = data["tasks"][0]["items"]
    assert len(items) == 240 and items[7]["modes"]["greedy"]["outputs"] == [EVIL]
    assert items[0]["modes"]["sc"]["finish_reasons"] == ["stop"] * 3 and items[0]["modes"]["greedy"]["tokens"]


def test_long_prompts_are_cut_in_the_middle_and_kept_with_zero(app, run_page, tmp_path):
    page, _ = run_page
    short = tmp_path / "short.html"
    assert invoke(app, "view", page.parent / "run", "-o", short, "--max-prompt-chars", "300").exit_code == 0
    item = data_of(short.read_text())["tasks"][0]["items"][3]
    assert len(item["prompt"]) < 420 and "characters left out of this page" in item["prompt"]
    assert item["prompt"].startswith("<|im_start|>user\nQuestion 3:") and item["prompt"].endswith("D. four<|im_end|>\n")
    assert item["prompt_chars"] > 1200
    whole = tmp_path / "whole.html"
    assert invoke(app, "view", page.parent / "run", "-o", whole, "--max-prompt-chars", "0").exit_code == 0
    assert "prompt_chars" not in data_of(whole.read_text())["tasks"][0]["items"][3]
    assert short.stat().st_size < whole.stat().st_size - 200 * 900


@needs_chromium
def test_run_page_renders_the_task_table_and_first_page_with_a_screenshot(run_page, tmp_path):
    page, expect = run_page
    dom = dump_dom(page.as_uri())
    assert 'data-ready="1"' in dom
    assert re.findall(r'<tr data-task="([^"]+)"', dom) == [expect["task"]]
    assert 'data-shown="240" data-total="240"' in dom and rows(dom) == expect["ids"][:50]
    invalid = len(expect["by_status"]["invalid"])
    assert f'<td class="num invalid-rate">{100 * invalid / 240:.1f}% / 0.0%</td>' in dom
    assert f'<td class="num truncation-rate">{100 * len(expect["truncated"]) / 240:.1f}%' in dom
    shot = tmp_path / "page.png"
    chromium(page.as_uri(), f"--screenshot={shot}", "--window-size=1280,900")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


@needs_chromium
@pytest.mark.parametrize("hash_,pick", [
    ("status=wrong", lambda e: e["by_status"]["wrong"]),
    ("status=invalid", lambda e: e["by_status"]["invalid"]),
    ("status=truncated", lambda e: e["truncated"]),
    ("status=correct&stratum=meta_info%3Dstep1", lambda e: [i for i in e["by_status"]["correct"] if i in e["step1"]]),
    ("q=SYN-0001", lambda e: [i for i in e["ids"] if i.startswith("syn-0001")]),
])
def test_filters_set_from_the_url_hash(run_page, hash_, pick):
    page, expect = run_page
    dom = dump_dom(f"{page.as_uri()}#size=250&{hash_}")
    want = pick(expect)
    assert 0 < len(want) < 240 and rows(dom) == want
    assert f'data-shown="{len(want)}"' in dom


DRIVE = """<script>
var s = document.getElementById('status'); s.value = 'correct'; s.dispatchEvent(new Event('change'));
document.getElementById('next').click();
document.querySelector('tr.item').click();
</script></body>"""


@needs_chromium
def test_the_controls_filter_paginate_and_open_an_item(run_page, tmp_path):
    page, expect = run_page
    driven = tmp_path / "driven.html"
    driven.write_text(page.read_text().replace("</body>", DRIVE))
    dom = dump_dom(driven.as_uri())
    correct = expect["by_status"]["correct"]
    assert rows(dom) == correct[50:100] and 'data-page="2"' in dom
    assert f'<tr class="detail" data-id="{correct[50]}">' in dom   # the first row of page 2, opened


@needs_chromium
def test_an_output_with_script_stays_text(run_page):
    page, expect = run_page
    dom = dump_dom(f"{page.as_uri()}#item=syn-00007")
    assert '<tr class="detail" data-id="syn-00007">' in dom
    shown = "&lt;script&gt;document.title='PWNED'&lt;/script&gt;&lt;img src=x onerror=\"document.title='PWNED'\"&gt; &amp; &lt;/script&gt;"
    assert f'<pre class="output">{shown}</pre>' in dom
    assert "<title>medeval run: synthetic/model</title>" in dom and "PWNED</title>" not in dom
    assert dom.count("<script") == 2 and "<img" not in dom


class _Canary(BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.hits.append(self.path)
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args):
        pass


@needs_chromium
def test_the_page_requests_nothing_even_when_outputs_hold_urls(app, tmp_path):
    """A loopback canary server counts requests: outputs and prompts naming it must not reach it."""
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Canary)
    srv.hits = []
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{srv.server_address[1]}"
    try:
        control = tmp_path / "control.html"   # proves the canary sees what a page loads
        control.write_text(f'<!DOCTYPE html><html><body><img src="{base}/control.png"></body></html>')
        dump_dom(control.as_uri())
        assert srv.hits == ["/control.png"]
        srv.hits.clear()
        urls = (f'<img src="{base}/img.png"><link rel="stylesheet" href="{base}/css"><iframe src="{base}/frame">'
                f'<script src="{base}/js"></script> {base}/plain')
        synthetic_run(tmp_path / "run", 12, evil={0: urls, 1: f'<a href="{base}/a">x</a>'})
        page = tmp_path / "page.html"
        assert invoke(app, "view", tmp_path / "run", "-o", page).exit_code == 0
        for item in ("syn-00000", "syn-00001"):
            assert f'data-id="{item}"' in dump_dom(f"{page.as_uri()}#item={item}")
        assert srv.hits == []
    finally:
        srv.shutdown()
        srv.server_close()


@needs_chromium
def test_ten_thousand_items_load_in_a_few_seconds(tmp_path):
    """SYNTHETIC 10k-item run with self-consistency (k=3); the precise timing is benchmarks/view_load.py."""
    expect = synthetic_run(tmp_path / "run", 10_000, k=3, seed=1)
    page = tmp_path / "page.html"
    page.write_text(V.run_page(tmp_path / "run"), encoding="utf-8")
    assert page.stat().st_size < 40e6
    dom = dump_dom(f"{page.as_uri()}#status=invalid&q=syn-09&size=250")
    want = [i for i in expect["by_status"]["invalid"] if i.startswith("syn-09")]
    assert rows(dom) == want[:250] and f'data-shown="{len(want)}" data-total="10000"' in dom
    load_ms = float(re.search(r'data-load-ms="([\d.]+)"', dom).group(1))
    assert load_ms < 5000, f"the 10k-item page took {load_ms:.0f} ms to load and render"


# ---------------------------------------------------------------- the comparison page
@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pair")
    golds = medqa_golds(200)
    base_ok, cand_ok = mask_with_accuracy(200, 0.7, seed=1), mask_with_accuracy(200, 0.55, seed=2)
    f1 = dict(primary_metric="macro_f1", metrics=("accuracy", "macro_f1"))   # gated on macro-F1: no 0/1 scores
    base = write_run(tmp / "base", "org/base", {"medqa": TaskSpec(golds, preds_from_mask(golds, base_ok)),
                                                "labels": TaskSpec(golds, preds_from_mask(golds, cand_ok), **f1)})
    cand = write_run(tmp / "cand", "org/cand<script>", {"medqa": TaskSpec(golds, preds_from_mask(golds, cand_ok)),
                                                         "labels": TaskSpec(golds, preds_from_mask(golds, base_ok), **f1)})
    ids = [str(i) for i in range(200)]
    expect = {"both_right": int((base_ok & cand_ok).sum()), "to_wrong": int((base_ok & ~cand_ok).sum()),
              "to_right": int((~base_ok & cand_ok).sum()), "both_wrong": int((~base_ok & ~cand_ok).sum()),
              "to_wrong_ids": [i for i, b, c in zip(ids, base_ok, cand_ok) if b and not c],
              "flipped_ids": [i for i, b, c in zip(ids, base_ok, cand_ok) if b != c]}
    return tmp, base, cand, expect


def test_gate_html_has_the_gates_counts_and_verdict(app, pair):
    tmp, base, cand, expect = pair
    page, report = tmp / "gate.html", tmp / "gate.json"
    res = invoke(app, "gate", "--baseline", base, "--candidate", cand, "--html", page, "--report-json", report)
    assert res.exit_code == 1, res.output   # a 15-point drop on 200 items: a regression
    gate = json.loads(report.read_text())["tasks"][0]
    data = data_of(page.read_text())
    task = data["tasks"][0]
    assert data["status"] == "FAIL" and task["verdict"] == "fail" and task["stats"] == gate["stats"]
    counts = task["counts"]
    assert counts["basis"] == "accuracy" and {k: counts[k] for k in ("both_right", "to_wrong", "to_right", "both_wrong")} == \
        {k: expect[k] for k in ("both_right", "to_wrong", "to_right", "both_wrong")}
    assert (counts["to_wrong"], counts["to_right"]) == (gate["stats"]["discordant_worse"], gate["stats"]["discordant_better"])
    assert [i["id"] for i in task["items"]] == expect["flipped_ids"]
    # a task gated on macro-F1 counts its flips by correctness (pred = gold), and says so
    labels = data["tasks"][1]
    assert labels["task"] == "labels" and labels["stats"]["test"] == "paired_bootstrap"
    assert labels["counts"] == {"both_right": expect["both_right"], "to_wrong": expect["to_right"],
                                "to_right": expect["to_wrong"], "both_wrong": expect["both_wrong"], "n": 200,
                                "basis": "correct"}
    flipped = task["items"][0]
    assert flipped["baseline"]["outputs"] and flipped["candidate"]["outputs"] and flipped["prompt"]
    # `medeval view --baseline --candidate` writes the same page
    same = tmp / "view.html"
    assert invoke(app, "view", "--baseline", base, "--candidate", cand, "-o", same).exit_code == 0
    assert same.read_text() == page.read_text()
    assert page.read_text().count("<script") == 2


@needs_chromium
def test_comparison_page_in_chromium(app, pair):
    tmp, base, cand, expect = pair
    page = tmp / "cmp.html"
    assert invoke(app, "view", "--baseline", base, "--candidate", cand, "-o", page).exit_code == 0
    dom = dump_dom(f"{page.as_uri()}#size=250")
    assert '<h1 id="status" data-status="FAIL">medeval gate: FAIL</h1>' in dom
    assert f'<td class="num to-wrong">{expect["to_wrong"]}</td>' in dom
    assert f'<td class="num both-right">{expect["both_right"]}</td>' in dom
    assert '<td class="verdict fail">FAIL</td>' in dom and "org/cand&lt;script&gt;" in dom
    assert '<td class="num mdd">' in dom and '<li class="power">' in dom   # the minimum detectable drop (issue 28)
    assert rows(dom) == expect["flipped_ids"]
    only = dump_dom(f"{page.as_uri()}#change=to_wrong&size=250")
    assert rows(only) == expect["to_wrong_ids"]
    first = expect["to_wrong_ids"][0]
    opened = dump_dom(f"{page.as_uri()}#change=to_wrong&item={first}")
    detail = opened[opened.index(f'<tr class="detail" data-id="{first}">'):]
    assert detail.index('data-mode="baseline"') < detail.index('data-mode="candidate"')   # side by side


def test_view_needs_one_run_or_a_pair(app, pair):
    tmp, base, cand, _ = pair
    res = invoke(app, "view")
    assert res.exit_code == 2 and "nothing to show" in res.output
    res = invoke(app, "view", base, "--baseline", base, "--candidate", cand)
    assert res.exit_code == 2 and "not both" in res.output
    res = invoke(app, "view", tmp / "missing")
    assert res.exit_code == 2 and "not found" in res.output


def test_clip_and_embed():
    assert V.clip("x" * 10, 0) == "x" * 10 and V.clip("abc", 10) == "abc"
    cut = V.clip("a" * 100 + "b" * 100, 30)
    assert cut.startswith("a" * 10) and cut.endswith("b" * 20) and "170 characters left out" in cut
    text = V.embed_json({"o": "</script><!-- & -->"})
    assert "<" not in text and ">" not in text and "&" not in text and json.loads(text) == {"o": "</script><!-- & -->"}
