"""Answer-style FAMILIES on real items: the corpus that measures extraction on styles it was not tuned on.

Each family imitates one way real models answer (long reasoning that rejects options, answer first
then a discussion of other letters, JSON/XML/tables/check marks, <think> blocks, six languages,
truncated outputs, refusals, two conflicting finals, ...). Its styles are templates filled with the
options of REAL items of medqa, medbullets_op5, mmlu_pro_medical (3 to 10 options) and pubmedqa,
read from the data mirror at run time (no dataset text is stored in the project), plus a few
SYNTHETIC items (marked `synthetic:` in `source`) whose options differ only by a sign or symbol.

Every style is generated twice: once stating the gold answer and once stating a wrong one
(`wrong_pass`), so an extractor that finds the gold anywhere fails the second pass. Every case has
an expected outcome: `answer` (the letter or label the text clearly states: `expected`), `invalid`
(the text states no answer) or `ambiguous` (it states two different final answers, or hedges).
A case may carry `finish_reason` ("length" for a truncated output).

Split: every family has `split` = "tune" or "held-out", fixed in its definition. The tune
families are in this file; the held-out families are in `style_families_heldout.py`, written by
someone who did not write the rules, and must not be read while tuning rules. Each style class
(e.g. `answer-first`) has one tune family (`answer-first.1`) and one held-out family
(`answer-first.2`) with different phrasings, so the held-out half measures how the rules read
phrasings they have not seen, class by class.
"""
from __future__ import annotations

import inspect
import json
import random
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
CHOICE_SETS = ("medqa", "medbullets_op5", "mmlu_pro_medical")
# mmlu_pro_medical items are picked by option count, in this order, so 10, 4, 7, 9, 3, ... options appear.
MMLU_PRO_COUNTS = (10, 4, 7, 9, 3, 5, 6, 8)

# SYNTHETIC items (written for this corpus, not from a dataset): options that differ only by a sign,
# a comparison symbol, an arrow or case, where an extractor that ignores symbols reads the wrong one.
SYNTHETIC_SYMBOL_ITEMS = [
    ("signs-ct", ["-1000", "1000", "0", "-100"]),
    ("signs-mv", ["-5 mV", "5 mV", "-50 mV", "50 mV"]),
    ("compare-pct", ["<20%", ">20%", "20%", "<2%"]),
    ("arrows", ["↑ ↑", "↑ ↓", "↓ ↑", "↓ ↓"]),
    ("case-genotype", ["Aa Bb", "AA bb", "aa BB", "Aa bb"]),
    ("signs-plus", ["+2", "-2", "+1", "-1"]),
]


@dataclass(frozen=True)
class Family:
    task: str              # "choice" (options with letters) | "label" (yes/no/maybe of pubmedqa)
    split: str             # "tune" | "held-out"
    styles: tuple          # each: a template, or (kind, template), or (kind, template, finish_reason)
    kind: str = "answer"   # the default expected outcome of a style
    finish: str = "stop"   # the default finish_reason
    pool: str = "general"  # which items: general | letters (options are letters) | symbols | pubmedqa
    note: str = ""


@dataclass(frozen=True)
class StyleCase:
    family: str
    split: str
    style: str             # the template
    text: str
    task: str
    options: tuple         # ((letter, text), ...) for choice; the labels for label tasks
    kind: str              # "answer" | "invalid" | "ambiguous"
    expected: str | None   # the letter/label for "answer", else None
    wrong_pass: bool
    finish_reason: str
    source: str            # "dataset:item id" or "synthetic:name"

    @property
    def option_dicts(self) -> list[dict]:
        return [{"letter": k, "text": t} for k, t in self.options]


def _F(task, split, styles, **kw) -> Family:
    return Family(task, split, tuple(styles), **kw)


# Placeholders: {L} the stated letter, {T} its option text, {TJ} the text escaped for JSON, {l} the letter in
# lower case, {W}/{WT} and {X}/{XT} two other options (discussed, rejected, runner-up), {N} the last letter,
# {OPTS} the option list. Label tasks: {y} the stated label, {Y} capitalised, {z}/{Z} another label.
# ---------------------------------------------------------------------------------------------------------
# TUNE families (the rules may be fitted to these).
TUNE = {
    "reasoning-weigh.1": _F("choice", "tune", [
        "Let's go through the options.\n{W}. {WT}: this would not explain the acute onset, so it is unlikely.\n"
        "{X}. {XT}: possible, but the findings argue against it.\n{L}. {T}: this fits every finding.\n\n"
        "Therefore the answer is {L}.",
        "The vignette describes a classic presentation. Considering {WT} ({W}) first: a reasonable thought, but "
        "the time course is wrong. {XT} ({X}) is also tempting, yet it ignores the lab values. That leaves {L}, "
        "which accounts for everything.\n\nFinal answer: {L}",
        "First, rule out what does not fit. Option {W} can be excluded because the patient is stable. Option {X} "
        "is excluded by the imaging. Among the remaining choices, {T} is the most appropriate.\n\n"
        "So the best answer is {L}.",
        "Step 1 - key findings: the history and the labs.\nStep 2 - weigh the options:\n* {W} ({WT}): wrong, it "
        "treats a different condition.\n* {X} ({XT}): only after stabilisation.\n* {L} ({T}): right.\n"
        "Step 3 - conclusion: {L}.",
        "Option {W} is a common distractor here because it is used in a similar setting. However, in this "
        "patient the correct choice is {L}: {T}.",
        "I considered {W} and {X}, but neither fits as well as the remaining option.\nI'd go with {L}.",
        "{WT} would be appropriate in a child, and {XT} in pregnancy; neither applies to this patient. "
        "That leaves {L}.",
        "Analysis:\n- {W}: incorrect\n- {X}: incorrect\n- {L}: correct\n\nFinal verdict: {L}",
        "The most important clue is the timing. {W} does not match it and {X} contradicts the exam. "
        "TL;DR: {L}",
    ]),
    "answer-first.1": _F("choice", "tune", [
        "({L}) {T}\n\n{W} is the usual choice for outpatients, but this patient is unstable.",
        "{L}. {T}\n\n{X} would be correct in children.",
        "**{L}**\n\nWhy not the others? {W} is tempting but too slow; {X} is used only after the diagnosis "
        "is confirmed.",
        "The answer is {L}.\n\n{W} is often chosen by students, and {X} is sometimes considered, but both miss "
        "the key finding.",
        "{L} - {T}. Note: {W} would be first-line if the patient were pregnant.",
        "Answer: {L}\n\nDiscussion: {WT} ({W}) is the most common wrong answer. {X} is incorrect because of "
        "the timing.",
        "{T} ({L}) is the most appropriate. {WT} is reserved for refractory cases.",
        "({L})\n{W} is a reasonable next step in other settings.",
    ]),
    "ranked.1": _F("choice", "tune", [
        "Best answer: {L}\nSecond-best: {W}",
        "Most likely: {L} ({T}). Next most likely: {W} ({WT}).",
        "1st choice: {L}\n2nd choice: {W}\n3rd choice: {X}",
        "My top pick is {L}; if that were not available I would choose {W}.",
        "The best option is {L}. The second-best option would be {W}, and {X} is the least appropriate.",
        "Answer: {L} (runner-up: {W})",
        "Top answer: {L}\nClose second: {W}",
    ]),
    "self-question.1": _F("choice", "tune", [
        "Is it {W}? No, the onset is too fast. Is it {X}? No. Is it {L}? Yes, this fits.",
        "Could the answer be {W}? Unlikely. What about {L}? That matches the findings. So {L}.",
        "Is {WT} the right choice? No. Is {T} the right choice? Yes.",
        "Should we pick {W}? Not here. Should we pick {L}? Yes - {T} is indicated.",
        "{W}? No. {X}? No. {L}? Yes.",
        "Does {WT} explain the picture? It does not. Does {T}? It does, so the answer is {L}.",
    ]),
    "self-correct.1": _F("choice", "tune", [
        "The answer is {W}. Wait, no - on re-reading, the patient is afebrile. The answer is {L}.",
        "{W}. Actually, {L}.",
        "Initially I thought {W}, but that is wrong. Correct answer: {L}.",
        "My first instinct was {W}. Actually, reconsidering the labs, it's {L}.",
        "{W}... hmm, no. {L}.",
        "I would say {W} - no, scratch that: {L}.",
    ]),
    "json.1": _F("choice", "tune", [
        '{"answer": "{L}"}',
        '{"choice": "{L}"}',
        '{"selected_option": "{L}", "confidence": 0.8}',
        '{"final": "{L}"}',
        '```json\n{\n  "reasoning": "{W} does not fit the timing",\n  "answer": "{L}"\n}\n```',
        '{"final_answer": "{L}", "explanation": "fits the findings"}',
        '{"answer": "{L}", "answer_text": "{TJ}"}',
        '{"rejected": ["{W}", "{X}"], "selected": "{L}"}',
        '{"answer": "({L})"}',
        "{'answer': '{L}'}",
        '{"response": {"answer": "{L}"}}',
        '{"answer": "{L}. {TJ}"}',
    ]),
    "xml.1": _F("choice", "tune", [
        "<final_answer>{L}</final_answer>",
        "<answer>{L}</answer>",
        "<reasoning>{W} does not fit the timing.</reasoning>\n<answer>{L}</answer>",
        "<final_answer>\n{L}\n</final_answer>",
        "<answer>({L}) {T}</answer>",
        "<response><choice>{L}</choice></response>",
        "<final_answer>({L}) {T}</final_answer>",
        "<answer>\nOption {L}\n</answer>",
    ]),
    "table.1": _F("choice", "tune", [
        "| Option | Assessment | Verdict |\n|---|---|---|\n| {W} | does not fit | Incorrect |\n"
        "| {L} | fits all findings | Correct |\n| {X} | too late | Incorrect |",
        "| Choice | Verdict |\n|---|---|\n| {W} | wrong |\n| {X} | wrong |\n| {L} | **correct** |",
        "| Option | Fits? |\n|--------|-------|\n| {L}. {T} | Yes |\n| {W}. {WT} | No |",
        "| Option | Comment |\n|---|---|\n| {W} | too slow |\n| {L} | indicated |\n\nAnswer: {L}",
        "| # | Option | Verdict |\n|---|---|---|\n| 1 | {W} | ✗ |\n| 2 | {L} | ✓ |",
        "| Option | Likely? |\n|---|---|\n| {W} | unlikely |\n| {L} | **most likely** |\n| {X} | unlikely |",
    ]),
    "checkmarks.1": _F("choice", "tune", [
        "❌ {W}\n✅ {L}\n❌ {X}",
        "{W}. {WT} ❌\n{L}. {T} ✅\n{X}. {XT} ❌",
        "- {W}: ❌ too slow\n- {X}: ❌ contraindicated\n- {L}: ✅ indicated",
        "✅ Correct: {L}\n❌ Incorrect: {W}, {X}",
        "✔️ {L}\n✖️ {W}",
        "{L} ✅ {T}",
        "[x] {L}\n[ ] {W}\n[ ] {X}",
    ]),
    "think.1": _F("choice", "tune", [
        "<think>\nThe options are {W}, {X} and {L}. {W} does not fit; {L} does.\n</think>\n\n{L}",
        "<think>Maybe {W}? No, the timing is wrong. So {L}.</think>\nThe answer is {L}.",
        "<think>\nLet me weigh {WT} against {T}. The latter fits.\n</think>\nFinal answer: **{L}**",
        "Okay, the key finding is the timing. {W} is out.\n</think>\n\nAnswer: {L}",
        ("invalid", "<think>\nThe patient has an acute presentation. Option {W} seems plausible because"),
        ("invalid", "<think>\nIs it {L}? Possibly. Let me check {W} as well. {W} would explain the"),
    ]),
    "lang-es.1": _F("choice", "tune", [
        "La respuesta correcta es la {L}.", "Respuesta: {L}",
        "Descartamos {W} porque no explica los hallazgos. Por lo tanto, la respuesta es {L}.",
        "Opción correcta: {L}",
    ]),
    "lang-pt.1": _F("choice", "tune", [
        "A resposta correta é {L}.", "Resposta final: {L}",
        "A opção {W} está incorreta. Portanto, a resposta é {L}.",
        "A alternativa correta é a letra {L}.",
    ]),
    "lang-fr.1": _F("choice", "tune", [
        "La bonne réponse est {L}.", "Réponse : {L}",
        "L'option {W} est incorrecte. La réponse est donc {L}.",
        "Réponse correcte : {L}",
    ]),
    "lang-de.1": _F("choice", "tune", [
        "Die richtige Antwort ist {L}.", "Antwort: {L}",
        "Option {W} ist falsch, weil der Verlauf nicht passt. Daher ist die Antwort {L}.",
        "Antwort {L} ist richtig.",
    ]),
    "lang-zh.1": _F("choice", "tune", [
        "答案是{L}。", "正确答案：{L}", "选项{W}不正确，因此答案为{L}。",
        "答案：{L}",
    ]),
    "lang-ja.1": _F("choice", "tune", [
        "正解は{L}です。", "答え：{L}", "{W}は誤りです。したがって、答えは{L}です。",
        "正解：{L}",
    ]),
    "truncated.1": _F("choice", "tune", [
        ("invalid", "Let's evaluate each option.\n{W}. {WT} - this is reasonable if the patient"),
        ("invalid", "The findings suggest a few possibilities. Option {L} ({T}) would make sense because"),
        ("invalid", "First, {W} can be excluded. Next, consider {L}. This is the"),
        ("invalid", "Answer analysis:\n- {W}: incorrect\n- {L}: this could be"),
        "Answer: {L}\n\nExplanation: {W} is incorrect because the patient is stable, and {X} would",
        "The correct answer is {L}. {T} is indicated here. The other options: {W} is used when",
        "**Final answer: {L}**\n\nReasoning: first, the history shows",
    ], finish="length"),
    "refusal.1": _F("choice", "tune", [
        "I'm sorry, but I can't help with medical questions.",
        "As an AI language model, I cannot provide a diagnosis. Please consult a healthcare professional.",
        "I cannot choose between these options without more clinical information.",
        "This question requires a physician's judgement; I won't select an answer.",
        "I'm not able to answer this. Options {W} and {L} both depend on details that are not given.",
    ], kind="invalid"),
    "conflict.1": _F("choice", "tune", [
        "Final answer: {L}\n\nThe timing and the exam both matter here.\n\nFinal answer: {W}",
        "\\boxed{{L}}\n\nFinal answer: {W}",
        "**Answer: {L}**\n\nTherefore, the correct answer is {W}.",
        '{"answer": "{L}"}\nFinal answer: {W}',
        "The correct answer is {L}.\nThe history is typical.\nThe correct answer is {W}.",
        "<answer>{L}</answer>\n<answer>{W}</answer>",
    ], kind="ambiguous"),
    "rejection-only.1": _F("choice", "tune", [
        "{L} is incorrect.",
        "Not {L}.",
        "Option {L} is wrong because the patient is stable.",
        "{W} and {L} can both be ruled out.",
        "It is definitely not {L}.",
        "{L} is a distractor.",
    ], kind="invalid"),
    "hedge.1": _F("choice", "tune", [
        "It's either {L} or {W}; I can't decide between them.",
        "Between {L} and {W}, both seem equally plausible.",
        "{L} or {W} - probably one of these two.",
        "Answer: {L} or {W}",
        "I'm torn between {L} ({T}) and {W} ({WT}).",
    ], kind="ambiguous"),
    "letter-options.1": _F("choice", "tune", [
        ("invalid", "We need to choose a treatment that addresses the underlying cause."),
        ("invalid", "A careful history is the first step."),
        ("invalid", "I cannot see the image, so I can't answer this."),
        ("invalid", "Choose a site for biopsy based on the imaging."),
        "Answer: {L}",
        "The structure is labelled {L} in the image, so the answer is {L}.",
        ("invalid", "A lesion is visible, but I cannot tell which label marks it."),
        "Answer: ({L})",
    ], pool="letters", note="real medbullets_op5 items whose options are the letters A-E themselves"),
    "option-text-symbols.1": _F("choice", "tune", [
        "{T}", "The answer is {T}.", "Answer: {T}", "**{T}**",
        "The correct answer is {T}.", "Final: {T}",
    ], pool="symbols", note="options that differ only by sign, symbol or case: real items found at run time "
                            "(medqa, mmlu_pro_medical) and SYNTHETIC ones"),
    "yn-reasoning.1": _F("label", "tune", [
        "The study compared two groups and found a significant reduction in the primary outcome. The authors "
        "conclude that the intervention works.\n\nAnswer: {y}",
        "Considering the abstract: the effect was small but consistent. Final answer: {y}",
        "{Y}. The results support this conclusion, although the sample was small.",
        "The key result is the adjusted odds ratio. Weighing it against the limitations, my answer is {y}.",
    ], pool="pubmedqa"),
    "yn-self-correct.1": _F("label", "tune", [
        "{Z}. Actually, {y} - the second analysis changes the picture.",
        "Initially I'd say {z}, but on reflection the answer is {y}.",
        "{Z}... no, wait. {Y}.",
        "My first thought was {z}. Actually, {y}.",
    ], pool="pubmedqa"),
    "yn-undetermined.1": _F("label", "tune", [
        "Whether {y} or {z} cannot be determined from the abstract.",
        "The answer cannot be determined from the information given.",
        "Yes/no cannot be determined.",
        "It is not possible to say yes or no based on this abstract.",
        "The data are insufficient to determine the answer.",
        "Indeterminate.",
        "Neither yes nor no can be concluded.",
    ], kind="invalid", pool="pubmedqa"),
    "yn-json-xml.1": _F("label", "tune", [
        '{"answer": "{y}"}', '{"final_decision": "{y}"}', "<answer>{y}</answer>",
        "<final_answer>{y}</final_answer>",
    ], pool="pubmedqa"),
    "yn-truncated.1": _F("label", "tune", [
        "Answer: {y}\n\nThe authors randomised 120 patients and",
        ("invalid", "The results suggest that the answer may be"),
        ("invalid", "Looking at the primary outcome, the effect seems to favour {y} because the"),
    ], finish="length", pool="pubmedqa"),
    "yn-hedge.1": _F("label", "tune", [
        "{Y} or {z}, the evidence is mixed.",
        "It could be {y}, but it could just as well be {z}.",
    ], kind="ambiguous", pool="pubmedqa"),
    "yn-lang.1": _F("label", "tune", [
        "Respuesta: {y}", "Réponse : {y}", "Antwort: {y}", "答案：{y}", "Resposta: {y}", "答え：{y}",
    ], pool="pubmedqa", note="yes/no/maybe in English after a final-answer marker in six languages"),
}

YESNO = ("yes", "no", "maybe")


def families(split: str | None = None) -> dict[str, Family]:
    """The families of one half ("tune" or "held-out"), or all."""
    out = dict(TUNE)
    if split != "tune":
        from .style_families_heldout import HELD_OUT

        out.update({k: Family(**v) for k, v in HELD_OUT.items()})
    return {k: f for k, f in out.items() if split is None or f.split == split}


# ------------------------------------------------------------------ items (read from the data mirror)
def _rows(data_dir: Path, name: str) -> list[dict]:
    with (Path(data_dir) / name / "test.jsonl").open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _key(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _collides(options: dict) -> bool:
    keys = [_key(str(t)) for t in options.values()]
    return len(set(keys)) < len(keys)


def _symbol_item(options: dict) -> bool:
    """Two options differ only by symbols or case (not only by spacing, which no reader can rely on)."""
    texts = [str(t) for t in options.values()]
    spaced = ["".join(t.split()) for t in texts]
    return _collides(options) and len(set(spaced)) == len(spaced)


def _letters_only(options: dict) -> bool:
    return all(str(t).strip() == k for k, t in options.items())


def _item(name: str, r: dict, i: int) -> dict:
    keys = sorted(r["options"])
    return {"source": f"{name}:{r.get('id', i)}", "options": tuple((k, str(r["options"][k])) for k in keys),
            "gold": r["answer_idx"]}


def load_items(data_dir: Path, per_dataset: int = 3) -> dict[str, list[dict]]:
    """{pool: [item]}: `per_dataset` general items of each choice data set (evenly spread; mmlu_pro_medical
    by option count), the letter-option and symbol items, and `per_dataset` pubmedqa items (yes, no,
    maybe first). No item text beyond options is used."""
    pools = {"general": [], "letters": [], "symbols": [], "pubmedqa": []}
    for name in CHOICE_SETS:
        rows = _rows(data_dir, name)
        ok = [i for i, r in enumerate(rows) if not _collides(r["options"]) and not _letters_only(r["options"])]
        if name == "mmlu_pro_medical":
            chosen = []
            for n in (MMLU_PRO_COUNTS * per_dataset)[:per_dataset]:
                chosen.append(next(i for i in ok if len(rows[i]["options"]) == n and i not in chosen))
        else:
            step = len(ok) // per_dataset
            chosen = [ok[j * step] for j in range(per_dataset)]
        pools["general"] += [_item(name, rows[i], i) for i in chosen]
        pools["letters"] += [_item(name, r, i) for i, r in enumerate(rows) if _letters_only(r["options"])]
        pools["symbols"] += [_item(name, r, i) for i, r in enumerate(rows) if _symbol_item(r["options"])][:per_dataset]
    for name, texts in SYNTHETIC_SYMBOL_ITEMS:
        pools["symbols"].append({"source": f"synthetic:{name}", "options": tuple(zip(LETTERS, texts)), "gold": "A"})
    pub = _rows(data_dir, "pubmedqa")
    chosen = []
    for lab in (YESNO * per_dataset)[:per_dataset]:
        chosen.append(next(i for i, r in enumerate(pub) if r["final_decision"] == lab and i not in chosen))
    pools["pubmedqa"] = [{"source": f"pubmedqa:{pub[i]['pubid']}", "options": YESNO, "gold": pub[i]["final_decision"]}
                         for i in chosen]
    return pools


# ------------------------------------------------------------------ generation
_SLOT = re.compile(r"\{(OPTS|WT|XT|TJ|T|W|X|L|l|N|YU|Y|y|Z|z)\}")


def _style(s) -> tuple[str, str | None, str | None]:
    if isinstance(s, str):
        return s, None, None
    return (s[1], s[0], s[2] if len(s) > 2 else None)


def _fill(template: str, values: dict) -> str:
    return _SLOT.sub(lambda m: values[m.group(1)], template)


def _is_prefix_of_another(opts: tuple, k: str, case_sensitive: bool) -> bool:
    def f(s):
        s = " ".join(s.split())
        return s if case_sensitive else s.lower()
    t = f(dict(opts)[k])
    return any(f(x).startswith(t) for kk, x in opts if kk != k)


def _choice_cases(fname: str, fam: Family, items: list[dict]) -> list[StyleCase]:
    out = []
    for si, style in enumerate(fam.styles):
        template, kind, finish = _style(style)
        kind, finish = kind or fam.kind, finish or fam.finish
        text_only = "{T}" in template and "{L}" not in template and "{l}" not in template
        for item in items:
            opts = item["options"]
            letters = [k for k, _ in opts]
            rng = random.Random(f"{fname}|{si}|{item['source']}")
            gold = item["gold"]
            if fam.pool == "symbols":   # the wrong pass states the option that differs from another only by symbols
                groups = defaultdict(list)
                for k, t in opts:
                    groups[_key(t)].append(k)
                twins = [g for g in groups.values() if len(g) > 1]
                if gold not in sum(twins, []):
                    gold = twins[0][0]
                wrong = next(k for g in twins for k in g if k != gold and gold in g)
            else:
                wrong = rng.choice([k for k in letters if k != gold])
            for stated, is_wrong in ((gold, False), (wrong, True)):
                if text_only and _is_prefix_of_another(opts, stated, fam.pool == "symbols"):
                    continue
                others = [k for k in letters if k != stated]
                rng.shuffle(others)
                if fam.pool == "symbols":     # its twin first
                    twin = [k for k in others if _key(dict(opts)[k]) == _key(dict(opts)[stated])]
                    others = twin + [k for k in others if k not in twin]
                w, x = others[0], others[1 % len(others)]
                t = dict(opts)
                values = {"L": stated, "l": stated.lower(), "T": t[stated], "TJ": json.dumps(t[stated])[1:-1],
                          "W": w, "WT": t[w], "X": x, "XT": t[x], "N": letters[-1],
                          "OPTS": "\n".join(f"{k}. {v}" for k, v in opts)}
                out.append(StyleCase(fname, fam.split, template, _fill(template, values), "choice", opts, kind,
                                     stated if kind == "answer" else None, is_wrong, finish, item["source"]))
    return out


def _label_cases(fname: str, fam: Family, items: list[dict]) -> list[StyleCase]:
    out = []
    for si, style in enumerate(fam.styles):
        template, kind, finish = _style(style)
        kind, finish = kind or fam.kind, finish or fam.finish
        for item in items:
            rng = random.Random(f"{fname}|{si}|{item['source']}")
            gold = item["gold"]
            wrong = rng.choice([v for v in YESNO if v != gold])
            for stated, is_wrong in ((gold, False), (wrong, True)):
                other = rng.choice([v for v in YESNO if v != stated])
                values = {"y": stated, "Y": stated.capitalize(), "YU": stated.upper(), "z": other,
                          "Z": other.capitalize()}
                out.append(StyleCase(fname, fam.split, template, _fill(template, values), "label", YESNO, kind,
                                     stated if kind == "answer" else None, is_wrong, finish, item["source"]))
    return out


def family_cases(data_dir: Path, split: str | None = None, per_dataset: int = 3) -> list[StyleCase]:
    """Every style of every family of `split` (None: both halves) on the items of its pool, both passes."""
    pools = load_items(data_dir, per_dataset)
    out = []
    for fname, fam in sorted(families(split).items()):
        items = pools[fam.pool]
        out += (_choice_cases if fam.task == "choice" else _label_cases)(fname, fam, items)
    return out


# ------------------------------------------------------------------ measurement
def _accepts(fn, name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def rules_extractor():
    """medeval's rules: choice_outcome / label_outcome, given the case's finish_reason when they accept one."""
    from ..tasks.extract import label_outcome
    from ..tasks.extract_choice import choice_outcome

    pass_choice = _accepts(choice_outcome, "finish_reason")
    pass_label = _accepts(label_outcome, "finish_reason")

    def run(case: StyleCase):
        if case.task == "choice":
            kw = {"finish_reason": case.finish_reason} if pass_choice else {}
            return choice_outcome(case.text, case.option_dicts, **kw)
        kw = {"finish_reason": case.finish_reason} if pass_label else {}
        return label_outcome(case.text, list(case.options), **kw)

    run.uses_finish_reason = pass_choice and pass_label
    return run


COUNTS = ("n", "clear", "right", "confident_wrong", "lost_invalid", "lost_ambiguous", "none", "read_from_none",
          "none_as_expected")


def measure(cases: list, extractor=None) -> tuple[dict, list]:
    """{family: counts} and the misses [(case, outcome)].

    clear = cases whose text clearly states one answer; right = read as that answer; confident_wrong =
    read as a different answer; lost_invalid / lost_ambiguous = a clear answer not read. none = cases
    that state no answer or two (expected invalid / ambiguous); read_from_none = an answer read from
    them; none_as_expected = the exact expected non-answer outcome (invalid vs ambiguous)."""
    run = extractor or rules_extractor()
    fams = {}
    misses = []
    for c in cases:
        o = run(c)
        f = fams.setdefault(c.family, dict.fromkeys(COUNTS, 0) | {"split": c.split})
        f["n"] += 1
        if c.kind == "answer":
            f["clear"] += 1
            ok = o.status == "answer" and o.answer == c.expected
            f["right"] += ok
            f["confident_wrong"] += o.status == "answer" and o.answer != c.expected
            f["lost_invalid"] += o.status == "invalid"
            f["lost_ambiguous"] += o.status == "ambiguous"
        else:
            f["none"] += 1
            ok = o.status == c.kind
            f["read_from_none"] += o.status == "answer"
            f["none_as_expected"] += ok
        if not ok:
            misses.append((c, o))
    return fams, misses


def totals(fams: dict, split: str | None = None) -> dict:
    tot = {k: sum(f[k] for f in fams.values() if split is None or f["split"] == split) for k in COUNTS}
    tot["right_rate"] = tot["right"] / tot["clear"] if tot["clear"] else None
    return tot


# ------------------------------------------------------------------ real outputs of the embedded model
def embedded_real_item_cases(data_dir: Path) -> list[StyleCase]:
    """Real greedy outputs of the embedded model (SmolLM2-135M-Instruct) on the first 15 items of medqa,
    medbullets_op5, mmlu_pro_medical and pubmedqa (`medeval run -t medqa,medbullets_op5,mmlu_pro_medical,pubmedqa
    -m embedded -b hf -l 15`, MEDEVAL_TORCH_THREADS=1), stored without dataset text: an option's text is
    `{opt:K}` (`{opt-:K}` without its final period) and is filled in from the data mirror here. Outputs that
    copy 6 or more words of the item were left out (3), as were outputs whose text is no option's (2) and a
    truncated yes/no answer that paraphrases the question (1). Labelled by hand: the letter when the letter and
    its own text agree, `ambiguous` when the letter comes with another option's text (case counts: `D. Bb Bb`
    where D is `Bb bb` and C is `Bb Bb`)."""
    path = Path(__file__).with_name("embedded_outputs_real_items.jsonl")
    cache: dict[str, list[dict]] = {}
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        rows = cache.setdefault(r["dataset"], _rows(data_dir, r["dataset"]))
        row = rows[r["row"]]
        if r["task"] == "label":
            options, gold_check = YESNO, str(row["pubid"]) == r["id"].split(":", 1)[1]
            text = r["template"]
        else:
            opts = row["options"]
            options = tuple((k, str(opts[k])) for k in sorted(opts))
            gold_check = str(row.get("id", r["row"])) == r["id"].split(":", 1)[1]
            text = re.sub(r"\{opt(-?):([A-Z])\}",
                          lambda m: opts[m.group(2)][:-1] if m.group(1) else opts[m.group(2)], r["template"])
        if not gold_check:
            raise ValueError(f"{path.name}: field 'row': {r['row']} of {r['dataset']} is not item {r['id']}; "
                             "the data mirror changed: regenerate the file")
        out.append(StyleCase("embedded-model-real-items", "real", r["template"], text, r["task"], options,
                             r["kind"], r["expected"], False, r["finish_reason"], r["id"]))
    return out
