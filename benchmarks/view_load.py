"""How fast `medeval view` pages build and load, on SYNTHETIC runs of growing size.

    python benchmarks/view_load.py                      # 1k and 10k items, k=3, 3 repeats
    python benchmarks/view_load.py --items 1000 --repeats 1

The runs come from tests/results_factory.py's `synthetic_run` (made-up prompts of 1.2 kB, greedy plus
three self-consistency samples per item). For each size: the time to build the page
(`medeval.reporting.view.run_page`), its size, and, in headless Chromium, the time from navigation start to the
first list rendered (`data-load-ms`, set by the page's script) and the script's own time (`data-render-ms`:
JSON.parse plus the first render), for the plain page and for a filtered one (status + text search).
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, load_str, median, save, versions, wait_quiet

sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from results_factory import synthetic_run  # noqa: E402

from medeval.reporting.view import run_page  # noqa: E402

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def load_page(url: str) -> dict:
    with tempfile.TemporaryDirectory() as profile:
        t0 = time.perf_counter()
        dom = subprocess.run([shutil.which("chromium"), *FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
                             capture_output=True, text=True, timeout=300).stdout
        wall = time.perf_counter() - t0
    got = {k: float(v) for k, v in re.findall(r'data-(load-ms|render-ms)="([\d.]+)"', dom)}
    shown = re.search(r'data-shown="(\d+)"', dom)
    return {"load_ms": got.get("load-ms"), "render_ms": got.get("render-ms"), "chromium_wall_s": wall,
            "shown": int(shown.group(1)) if shown else None}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", default="1000,10000")
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quiet-wait", type=float, default=0.0, help="wait up to S seconds for a quiet machine first")
    a = ap.parse_args()
    quiet = wait_quiet(max_wait=a.quiet_wait)
    if shutil.which("chromium") is None:
        raise SystemExit("chromium is not on PATH: apt-get install chromium")
    sizes, out = [int(x) for x in a.items.split(",")], []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            run = Path(tmp) / f"run{n}"
            synthetic_run(run, n, k=a.k, seed=n)
            builds, page = [], None
            for _ in range(a.repeats):
                t0 = time.perf_counter()
                page = run_page(run)
                builds.append(time.perf_counter() - t0)
            path = Path(tmp) / f"page{n}.html"
            path.write_text(page, encoding="utf-8")
            entry = {"items": n, "k": a.k, "page_mb": path.stat().st_size / 1e6, "build_s": median(builds),
                     "load_before": load_str()}
            for name, suffix in (("plain", ""), ("filtered", "#status=invalid&q=syn-0")):
                loads = [load_page(path.as_uri() + suffix) for _ in range(a.repeats)]
                entry[name] = {k: median([x[k] for x in loads]) for k in ("load_ms", "render_ms", "chromium_wall_s")}
                entry[name]["shown"] = loads[0]["shown"]
            entry["load_after"] = load_str()
            out.append(entry)
            print(f"{n} items: {entry['page_mb']:.1f} MB, build {entry['build_s']:.2f} s, "
                  f"load {entry['plain']['load_ms']:.0f} ms (script {entry['plain']['render_ms']:.0f} ms), "
                  f"filtered {entry['filtered']['render_ms']:.0f} ms")
    chromium = subprocess.run([shutil.which("chromium"), "--version"], capture_output=True, text=True).stdout.strip()
    save("view_load", {"versions": versions(), "chromium": chromium,
                       "settings": {"items": sizes, "k": a.k, "repeats": a.repeats, "prompt_chars": 1200},
                       "quiet_wait": quiet,
                       "runs": out})


if __name__ == "__main__":
    main()
