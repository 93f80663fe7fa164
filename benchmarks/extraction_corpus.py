"""Extraction accuracy per answer-style family on medeval's own style corpus.

    python benchmarks/extraction_corpus.py                      # current rules (and the baseline rev)
    python benchmarks/extraction_corpus.py --baseline-rev f292017   # compare with the rules at a git revision

The corpus (medeval/testing/extraction_corpus.py) is generated from hand-written templates: MCQ
with 2 to 10 options, yes/no/maybe and label sets, each answer style once with the gold and once
with a wrong answer, plus hedges (expected: ambiguous), unreadable outputs (expected: invalid), the
held-out rounds (styles written after the rules were tuned) and real outputs of the embedded model
labelled by hand, and (when ../shared/data is present) every MCQ style on the option sets of real
MedQA, MedXpertQA, MedBullets and MedMCQA items (their texts are read, never stored).

Style families (issue 21, medeval/testing/style_families.py): answer styles that imitate real models on
real items of medqa, medbullets_op5, mmlu_pro_medical and pubmedqa, split into a TUNE half (rules may be
fitted to it) and a HELD-OUT half (style_families_heldout.py, not read while tuning), measured per half and
per family: clear answers read right, confident-wrong, read from text that states none, clear answers lost
(invalid / ambiguous); with the current rules (the working tree) and the rules at --before-rev (the last
commit before issue 21's rewrite). Writes benchmarks/results/extraction_corpus.json; report.py turns it into
a section of RESULTS.md.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
import types
from collections import Counter

from _common import DATA, RESULTS, ROOT

sys.path.insert(0, str(ROOT))

from medeval.tasks.extract import INVALID, Outcome  # noqa: E402
from medeval.testing.extraction_corpus import (_options, all_cases, holdout_cases, real_cases,  # noqa: E402
                                               score_corpus)


def baseline_extractor(rev: str):
    """The extractor at git revision `rev` (no 'ambiguous' outcome there: None is 'invalid')."""
    src = subprocess.run(["git", "show", f"{rev}:medeval/tasks/extract.py"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    mod = types.ModuleType("medeval._extract_baseline")
    mod.__package__ = "medeval"
    exec(compile(src, f"{rev}:medeval/tasks/extract.py", "exec"), mod.__dict__)

    def run(case):
        if case.task == "choice":
            ans = mod.extract_choice(case.text, _options(case.choices))
        else:
            ans = mod.extract_label(case.text, list(case.choices))
        return INVALID if ans is None else Outcome(ans, "answer")

    return run


BEFORE_ISSUE_21 = "094b2f0"   # main before the issue-21 rules rewrite (extract.py + extract_choice.py)


def rules_at(rev: str):
    """An extractor for style-family cases with the rules at git revision `rev` (extract.py and
    extract_choice.py loaded from git into a throwaway package; nothing is checked out)."""
    pkg = f"_medeval_rules_{rev}"
    mods = {}
    root = types.ModuleType(pkg)
    root.__path__ = []
    sys.modules[pkg] = root
    for name in ("extract", "extract_choice"):
        src = subprocess.run(["git", "show", f"{rev}:medeval/{name}.py"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout
        mod = types.ModuleType(f"{pkg}.{name}")
        mod.__package__ = pkg
        sys.modules[mod.__name__] = mod
        exec(compile(src, f"{rev}:medeval/{name}.py", "exec"), mod.__dict__)
        mods[name] = mod

    def run(case):
        if case.task == "choice":
            return mods["extract_choice"].choice_outcome(case.text, case.option_dicts)
        return mods["extract"].label_outcome(case.text, list(case.options))

    return run


def rules_version() -> str:
    """The last commit that changed the rules (medeval/tasks/extract*.py), '+uncommitted' if the tree differs."""
    files = ["medeval/tasks/extract.py", "medeval/tasks/extract_choice.py", "medeval/tasks/extract_statements.py"]
    git = lambda *a: subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True)  # noqa: E731
    rev = git("log", "-1", "--format=%h", "--", *files).stdout.strip() or "?"
    return rev + ("+uncommitted" if git("diff", "--quiet", "HEAD", "--", *files).returncode else "")


def embedded_as_style_cases() -> list:
    """The hand-labelled real outputs of the embedded model, in the style-family form (split 'real'): to prompts
    written for the old corpus, and on real items (medeval/testing/embedded_outputs_real_items.jsonl)."""
    from medeval.testing import style_families as sf

    return [sf.StyleCase("embedded-model", "real", c.style, c.text, c.task,
                      tuple(zip("ABCDEFGHIJ", c.choices)) if c.task == "choice" else c.choices, c.kind, c.expected,
                      False, "stop", "embedded_outputs.jsonl") for c in real_cases()] + \
        sf.embedded_real_item_cases(DATA)


def measure_families(before_rev: str) -> dict:
    from medeval.testing import style_families as sf

    cases = sf.family_cases(DATA) + embedded_as_style_cases()
    current = sf.rules_extractor()
    out = {"before_rev": before_rev, "uses_finish_reason": current.uses_finish_reason,
           "sizes": {}, "current": {}, "before": {}, "misses": []}
    fams, misses = sf.measure(cases, current)
    out["current"] = {"families": fams, "totals": {s: sf.totals(fams, s) for s in ("tune", "held-out", "real")}}
    grouped = Counter((c.family, c.split, c.style, c.kind, o.status, o.status == "answer" and c.kind == "answer")
                      for c, o in misses)   # per style, not per case: the templates, no dataset text
    out["misses"] = [{"family": f, "split": sp, "style": st, "kind": k, "got": g, "wrong_answer": w, "cases": n}
                     for (f, sp, st, k, g, w), n in sorted(grouped.items())]
    try:
        bf, _ = sf.measure(cases, rules_at(before_rev))
        out["before"] = {"families": bf, "totals": {s: sf.totals(bf, s) for s in ("tune", "held-out", "real")}}
    except (subprocess.CalledProcessError, FileNotFoundError) as e:
        print(f"rules at {before_rev} unavailable: {e}")
    out["sizes"] = {s: sum(1 for c in cases if c.split == s) for s in ("tune", "held-out", "real")}
    return out


def real_option_cases(rows: int) -> list:
    """The MCQ styles on the option sets of the first `rows` items of four real datasets (read from
    the data mirror now; no dataset text is stored). An 'invalid' output that quotes an option's
    text is dropped (it names that option)."""
    import json
    from dataclasses import replace

    from medeval.tasks.extract import norm
    from medeval.testing import extraction_corpus as corpus

    out = []
    for name in ("medqa", "medxpertqa", "medbullets_op5", "medmcqa"):
        f = DATA / name / ("validation.jsonl" if name == "medmcqa" else "test.jsonl")
        if not f.is_file():
            continue
        items = [json.loads(l) for l in f.read_text().splitlines()[:rows]]
        sets = ([[r[k] for k in ("opa", "opb", "opc", "opd")] for r in items] if name == "medmcqa" else
                [[r["options"][k] for k in sorted(r["options"])] for r in items])
        saved = corpus.OPTION_SETS
        corpus.OPTION_SETS = sets
        try:
            cases = corpus.mcq_cases(seed=7)
        finally:
            corpus.OPTION_SETS = saved
        out += [replace(c, family=f"{name}:{c.family}") for c in cases
                if c.kind != "invalid" or not any(norm(t) in norm(c.text) for t in c.choices if norm(t))]
    return out


def summarise(fams: dict) -> dict:
    tot = {k: sum(f.get(k, 0) for f in fams.values()) for k in
           ("n", "intended", "confident_wrong", "invalid_guessed", "hedge_credited")}
    tot["intended_rate"] = tot["intended"] / max(tot["n"], 1)
    return tot


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline-rev", default="f292017", help="git revision whose medeval/tasks/extract.py is compared")
    ap.add_argument("--before-rev", default=BEFORE_ISSUE_21,
                    help="git revision whose extract.py + extract_choice.py are the 'before issue 21' rules")
    ap.add_argument("--rows", type=int, default=40, help="items per real dataset whose option sets are used")
    ap.add_argument("--quiet-wait", default="0", help="ignored (no timing here); accepted for run_all.py")
    a = ap.parse_args()
    t0 = time.time()
    sets = {"corpus": all_cases(), "held-out": holdout_cases(), "embedded-model": real_cases()}
    if DATA.is_dir():
        sets["real-option-sets"] = real_option_cases(a.rows)
    out = {"created": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "baseline_rev": a.baseline_rev,
           "sizes": {k: len(v) for k, v in sets.items()}, "current": {}, "baseline": {}, "misses": []}
    try:
        base = baseline_extractor(a.baseline_rev)
    except (subprocess.CalledProcessError, FileNotFoundError) as e:
        print(f"baseline {a.baseline_rev} unavailable: {e}")
        base = None
    for name, cases in sets.items():
        fams, misses = score_corpus(cases)
        out["current"][name] = {"families": fams, "total": summarise(fams)}
        out["misses"] += [{"set": name, "family": c.family, "expected": c.expected, "kind": c.kind,  # no dataset text
                           "text": c.style if name == "real-option-sets" else c.text[:200],
                           "got": o.answer, "status": o.status} for c, o in misses]
        if base is not None:
            bf, _ = score_corpus(cases, base)
            out["baseline"][name] = {"families": bf, "total": summarise(bf)}
    if DATA.is_dir():
        out["families"] = measure_families(a.before_rev)
        out["families"]["rules"] = rules_version()
    out["seconds"] = round(time.time() - t0, 2)
    import json

    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "extraction_corpus.json").write_text(json.dumps(out, indent=1))
    for name in sets:
        c = out["current"][name]["total"]
        print(f"{name}: n={c['n']} intended={100 * c['intended_rate']:.2f}% confident_wrong={c['confident_wrong']} "
              f"invalid_guessed={c['invalid_guessed']} hedge_credited={c['hedge_credited']}")
    if "families" in out:
        for name in ("current", "before"):
            for split, t in out["families"].get(name, {}).get("totals", {}).items():
                rate = "n/a" if t["right_rate"] is None else f"{100 * t['right_rate']:.1f}%"
                print(f"families {name} {split}: clear={t['clear']} right={rate} "
                      f"confident_wrong={t['confident_wrong']} read_from_none={t['read_from_none']} lost_invalid={t['lost_invalid']} "
                      f"lost_ambiguous={t['lost_ambiguous']}")
    print(f"wrote {RESULTS / 'extraction_corpus.json'} in {out['seconds']} s")


if __name__ == "__main__":
    main()
