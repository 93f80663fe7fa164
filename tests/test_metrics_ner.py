"""Entity-level F1, the entity-list parser and the mention-to-span alignment, on hand-computed
cases, against scikit-learn, and on real ncbi_disease / bc5cdr rows from ../shared/data."""
from __future__ import annotations

import json
import random
from collections import Counter

import pytest
from sklearn.metrics import f1_score

from medeval import metrics
from medeval.metrics import ner

from conftest import read_rows
ENTITY = '{{"text": "{}", "type": "{}"}}'


def rows(dataset: str) -> list[dict]:
    return read_rows(dataset)


def gold_as_json_lines(row: dict) -> str:
    return "\n".join(json.dumps({"text": e["text"], "type": e["type"]}) for e in row["entities"]) or "[]"


# --- entity F1 ------------------------------------------------------------------

GOLDS = [[(0, 2, "Disease"), (5, 6, "Chemical")], [(1, 3, "Disease")]]
PREDS = [[(0, 2, "Disease"), (5, 6, "Disease")], None]  # a type error, then a malformed output


def test_entity_f1_hand_computed():
    # Disease: TP 1, FP 1 (5-6 typed Disease), FN 1 (the missed 1-3); Chemical: FN 1.
    assert ner.entity_counts(PREDS, GOLDS) == {"Chemical": (0, 0, 1), "Disease": (1, 1, 1)}
    assert metrics.compute("entity_micro_f1", PREDS, GOLDS) == pytest.approx(2 / 5)  # 2*1/(2+1+2)
    assert metrics.compute("entity_f1", PREDS, GOLDS) == pytest.approx(2 / 5)
    assert metrics.compute("entity_precision", PREDS, GOLDS) == pytest.approx(1 / 2)
    assert metrics.compute("entity_recall", PREDS, GOLDS) == pytest.approx(1 / 3)
    assert metrics.compute("entity_macro_f1", PREDS, GOLDS) == pytest.approx((1 / 2 + 0) / 2)
    assert metrics.compute("entity_micro_f1", PREDS, GOLDS, {"types": ["Disease"]}) == pytest.approx(1 / 2)
    # Partial span overlap earns nothing; duplicates count once; dict entities (the data's form) work.
    assert ner.entity_micro_f1([[(0, 1, "Disease")]], [[(0, 2, "Disease")]]) == 0.0
    dicts = [[{"start": 0, "end": 2, "type": "Disease", "text": "x y"}] * 2]
    assert ner.entity_micro_f1([[(0, 2, "Disease")]], dicts) == 1.0
    assert ner.entity_micro_f1([[]], [[]]) == 0.0 and ner.entity_macro_f1([[]], [[]]) == 0.0
    with pytest.raises(ValueError, match="start, end, type"):
        ner.entity_micro_f1([[(0, 2)]], [[]])


def _sklearn_entity_f1(preds, golds, types, average):
    """Independent formulation: one classification decision per candidate span (gold or predicted),
    'O' where a side has no entity; F1 over the entity types (spans carry at most one type here)."""
    y_true, y_pred = [], []
    for p, g in zip(preds, golds):
        p = {(s, e): t for s, e, t in (p or [])}
        g = {(e["start"], e["end"]): e["type"] for e in g}
        for span in sorted(set(p) | set(g)):
            y_true.append(g.get(span, "O"))
            y_pred.append(p.get(span, "O"))
    return f1_score(y_true, y_pred, labels=types, average=average, zero_division=0)


def test_entity_f1_equals_sklearn_on_perturbed_bc5cdr():
    data = rows("bc5cdr")[:800]
    rng = random.Random(0)
    preds = []
    for r in data:
        pred = {}
        for e in r["entities"]:
            roll = rng.random()
            if roll < 0.15:
                continue  # missed
            start, end, typ = e["start"], e["end"], e["type"]
            if roll < 0.3:
                end = max(start + 1, end - 1) if end - start > 1 else end + 1  # boundary error
            elif roll < 0.4:
                typ = "Chemical" if typ == "Disease" else "Disease"  # type error
            pred[(start, end)] = typ
        if rng.random() < 0.2:
            pred[(0, 1)] = "Disease"  # spurious
        preds.append(None if rng.random() < 0.05 else [(s, e, t) for (s, e), t in pred.items()])
    golds = [r["entities"] for r in data]
    types = ["Chemical", "Disease"]
    micro, macro = ner.entity_micro_f1(preds, golds), ner.entity_macro_f1(preds, golds, types=types)
    assert micro == pytest.approx(_sklearn_entity_f1(preds, golds, types, "micro"), abs=1e-12)
    assert macro == pytest.approx(_sklearn_entity_f1(preds, golds, types, "macro"), abs=1e-12)
    assert 0.5 < macro < 0.95 and micro != macro


# --- parsing --------------------------------------------------------------------

ASTHMA = [{"text": "asthma", "type": "Disease"}]


@pytest.mark.parametrize("output, expected", [
    ('{"text": "asthma", "type": "Disease"}\n{"text": "A-T", "type": "disease"}',
     ASTHMA + [{"text": "A-T", "type": "disease"}]),
    ('Sure! Here are the entities:\n```json\n[{"text": "asthma", "type": "Disease"}]\n```', ASTHMA),
    ('```jsonl\n{"text": "asthma", "type": "Disease"}\n```\nThat is all.', ASTHMA),
    ('<think>maybe {"text": "cough", "type": "Disease"}</think>\n{"text": "asthma", "type": "Disease"},', ASTHMA),
    ('The entities are:\n- {"text": "asthma", "type": "Disease"}', ASTHMA),
    ('Entities [below]:\n{"text": "asthma", "type": "Disease"}', ASTHMA),
    ('{"entities": [{"text": "asthma", "type": "Disease"}]}', ASTHMA),
    ("{'text': 'asthma', 'type': 'Disease'}", ASTHMA),
    ('{"text": "asthma", "type": "Disease"}, {"text": "gout", "type": "Disease"}',
     ASTHMA + [{"text": "gout", "type": "Disease"}]),
    ('[{"text": "asthma", "type": "Disease"}, {"text": "no type"}, 3]', ASTHMA),
    ("[]", []),
    ("None", []),
    ("No entities found.", []),
    ("", None),
    (None, None),
    ("I could not find anything.", None),
    ('{"text": "asthma", "type": "Disease"', None),
    ('[{"text": "asthma"}]', None),
    ('<think>the answer is {"text": "asthma", "type": "Disease"}', None),
])
def test_parse_entities(output, expected):
    assert ner.parse_entities(output) == expected


# --- alignment ------------------------------------------------------------------

def test_align_mentions_rules():
    tokens = "The ataxia - telangiectasia ( A - T ) gene ; Ataxia - Telangiectasia and breast cancer or cancer".split()
    counts = Counter()
    mentions = [
        {"text": "ataxia-telangiectasia", "type": "disease"},  # data tokenisation, any case, both occurrences
        {"text": "A - T", "type": "Disease"},
        {"text": "breast cancer", "type": "Disease"},
        {"text": "cancer", "type": "Disease"},  # inside "breast cancer": dropped there, kept alone
        {"text": "leukaemia", "type": "Disease"},  # not in the sentence
        {"text": "ATM", "type": "Gene"},  # unknown type
    ]
    spans = ner.align_mentions(mentions, tokens, ["Disease"], counts)
    assert spans == [(1, 4, "Disease"), (5, 8, "Disease"), (11, 14, "Disease"), (15, 17, "Disease"),
                     (18, 19, "Disease")]
    assert counts == Counter(not_found=1, unknown_type=1)
    # Longest match first, even when a shorter overlapping one starts further left.
    tokens = ["sporadic", "T", "-", "cell", "leukaemia"]
    mentions = [{"text": "sporadic T", "type": "Disease"}, {"text": "T-cell leukaemia", "type": "Disease"}]
    assert ner.align_mentions(mentions, tokens, ["Disease"]) == [(1, 5, "Disease")]
    # Overlap ties go to the earlier mention; output does not depend on mention order otherwise.
    assert ner.align_mentions([{"text": "x", "type": "chemical"}, {"text": "x", "type": "Disease"}],
                              ["x"], ["Chemical", "Disease"]) == [(0, 1, "Chemical")]


def test_predict_entities_counts_malformed():
    counts = Counter()
    assert ner.predict_entities("no idea", ["asthma"], ["Disease"], counts) is None
    assert ner.predict_entities('{"text": "Asthma", "type": "Disease"}', ["asthma"], ["Disease"], counts) == [
        (0, 1, "Disease")]
    assert counts == Counter(malformed=1)


def test_gold_texts_as_json_lines_give_f1_one_on_ncbi_disease():
    data = rows("ncbi_disease")
    counts = Counter()
    preds = [ner.predict_entities(gold_as_json_lines(r), r["tokens"], ["Disease"], counts) for r in data]
    golds = [r["entities"] for r in data]
    assert counts == Counter()
    assert ner.entity_micro_f1(preds[:200], golds[:200]) == 1.0
    # Over the whole test set recall is exact; the few extra spans are unannotated repeats of
    # annotated strings (e.g. a second "VHL" in one sentence), which the all-occurrences rule tags.
    assert ner.entity_recall(preds, golds) == 1.0
    assert ner.entity_precision(preds, golds) > 0.99


def test_gold_texts_as_json_lines_on_bc5cdr():
    data = rows("bc5cdr")[:1500]
    preds = [ner.predict_entities(gold_as_json_lines(r), r["tokens"], ["Chemical", "Disease"]) for r in data]
    golds = [r["entities"] for r in data]
    assert ner.entity_macro_f1(preds, golds, types=["Chemical", "Disease"]) == 1.0
