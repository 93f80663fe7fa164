"""A corpus of answer styles for testing extraction: generated from hand-written templates.

Every case is (family, style, text, kind, options/labels, expected), where expected is an
option letter or label ("answer" cases), None for hedges ("ambiguous") and None for
unreadable outputs ("invalid"). Each answer style is generated twice: once stating the gold
answer and once stating a different, wrong answer, so an extractor that finds the gold
anywhere in the text (the options, the question) fails the second pass.

No dataset text is used: the option sets below are written for this corpus. `score_corpus`
runs an extractor over the corpus and counts, per family: intended, confident-wrong (an answer
that is not the intended one), invalid-guessed (an answer where none should be read) and
hedge-credited (an answer for a hedge).
"""
from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass

# Option sets written for this corpus: 2 to 10 options, with the traps that broke extractors:
# option texts that start with the article "A", with "E." or "I", that contain letters, that
# contain each other, and "Both A and B" / "None of the above".
OPTION_SETS = [
    ["True", "False"],
    ["Increase", "Decrease", "No change"],
    ["Aspirin", "Heparin", "Warfarin therapy", "Warfarin"],
    ["Observation", "A chest X-ray must be done", "Start antibiotics", "Both A and B", "None of the above"],
    ["E. coli infection", "Staphylococcus aureus", "A viral cause", "Candida", "Vitamin C deficiency",
     "I-131 therapy"],
    ["Beta blocker", "Calcium channel blocker", "ACE inhibitor", "Angiotensin receptor blocker", "Diuretic",
     "Nitrate", "Digoxin"],
    ["Left anterior descending artery", "Right coronary artery", "Left circumflex artery", "Posterior descending",
     "Obtuse marginal", "Diagonal branch", "Septal perforator", "Ramus intermedius"],
    ["Reassurance", "Lumbar puncture", "CT of the head", "MRI of the brain", "EEG", "Carotid doppler",
     "Echocardiogram", "Tilt table test", "Holter monitor"],
    ["Hyperkalemia", "Hypokalemia", "Hypernatremia", "Hyponatremia", "Hypercalcemia", "Hypocalcemia",
     "Hypermagnesemia", "Hypomagnesemia", "Metabolic acidosis", "A chest X-ray must be done"],
    ["Supportive care", "Immediate surgery", "IV fluids and observation", "Endoscopy", "Proton pump inhibitor",
     "H. pylori eradication", "Octreotide infusion", "Band ligation", "TIPS procedure", "I and D"],
]
LETTERS = "ABCDEFGHIJ"

# {L} the letter, {T} its option text, {l} the letter in lower case, {W}/{WT} another option,
# {N} the last letter of the set.
MCQ_STYLES = {
    "bare": ["{L}", "({L})", "{L}.", "{L})", "[{L}]", "**{L}**", "*{L}*", "`{L}`", "  {L}  ", "{L}\n", "({L}).",
             "**({L})**", "{L}:", "Option {L}", "option {L}.", "Choice {L}", "Letter {L}"],
    "answer-phrase": [
        "Answer: {L}", "answer: {L}", "ANSWER: {L}", "The answer is {L}.", "The answer is ({L}).",
        "The correct answer is {L}", "The correct answer is option {L}.", "Correct answer: {L}",
        "Final answer: {L}", "Final Answer: ({L})", "The final answer is {L}.", "My answer: {L}",
        "Answer - {L}", "Answer = {L}", "Answer -> {L}", "The best answer is {L}", "The most likely answer is {L}.",
        "Answer choice {L}", "The answer would be {L}.", "The answer should be {L}", "Answer (A-{N}): {L}",
        "The correct option is {L}.", "Correct option: {L}", "Best choice: {L}", "Option: {L}", "Choice: {L}",
        "Answer: Option {L}", "Answer: option ({L})", "The answer to this question is {L}.", "The right answer is {L}.",
        "Sure! The answer is {L}.", "Great question. Answer: {L}", "Based on the findings, the answer is {L}.",
        "the answer is ({l})", "Answer: {l}", "The answer is: {L}", "Answer:{L}", "Answer :  {L}",
        "It is {L}.", "The most appropriate option is {L}.", "The answer is letter {L}.",
        "Answer: {L}\nExplanation: this fits the presentation best.",
        "Answer: {L}, because it fits the presentation.", "The answer is {L} because it fits best.",
    ],
    "markdown": [
        "**Answer:** {L}", "**Answer**: {L}", "**Answer: {L}**", "**Final Answer**\n\n{L}", "**Final Answer:**\n{L}",
        "### Final Answer\n{L}", "## Answer\n\n**{L}**", "Answer:\n\n{L}", "The correct answer is **{L}**.",
        "> Answer: {L}", "- Answer: {L}", "**Final answer:** ({L})", "__Answer:__ {L}", "*Answer:* {L}",
        "**Correct answer: {L}**", "### Answer: {L}", "Answer: `{L}`", "| Answer | {L} |",
        "**Final Answer**\n**{L}**", "**Answer**\n\n({L})",
    ],
    "latex": [
        "\\boxed{{{L}}}", "$\\boxed{{{L}}}$", "\\boxed{{\\text{{{L}}}}}", "\\boxed{{\\textbf{{{L}}}}}",
        "\\boxed{{\\mathrm{{{L}}}}}", "The final answer is $\\boxed{{{L}}}$.", "\\boxed{{{L}. {T}}}",
        "\\[\\boxed{{{L}}}\\]", "So the answer is \\boxed{{({L})}}.", "$$\\boxed{{\\text{{{L}}}}}$$",
        "\\boxed{{\\text{{Option }} {L}}}", "\\boxed{{ {L} }}",
    ],
    "letter+text": [
        "{L}. {T}", "{L}) {T}", "({L}) {T}", "{L}: {T}", "{L} - {T}", "Answer: {L}. {T}", "The answer is {L}. {T}",
        "The answer is {L} ({T}).", "{T} ({L})", "Answer: {T} ({L})", "**{L}. {T}**", "The answer is {L}: {T}.",
        "{L} — {T}", "Answer: ({L}) {T}", "The correct answer is {L}) {T}.", "Final answer: **{L}. {T}**",
        "{L}. {T}\n\nThis is the best choice for this patient.", "Option {L}: {T}", "({L}) {T} is correct.",
        "The best answer is ({L}) {T}", "My answer is {L}, {T}.",
    ],
    "text-only": [
        "{T}", "{T}.", "Answer: {T}", "The answer is {T}.", "The correct answer is: {T}", "**{T}**",
        "I would choose {T}.", "Final answer: {T}", "The best option here is {T}.", "{T} is the correct answer.",
        "Answer: **{T}**",
    ],
    "choose-verb": [
        "I would choose {L}.", "I'd choose {L}", "I choose {L}.", "I'll go with {L}.", "I would go with option {L}.",
        "I pick {L}", "I select {L}.", "I'd say {L}.", "Going with {L}.", "My pick is {L}.",
        "I am going to choose {L}", "I would select option ({L}).", "I’d go with {L}.", "I would answer {L}.",
        "I will choose {L}.", "I'd opt for {L}.",
    ],
    "verdict-after": [
        "{L} is the correct answer.", "{L} is correct.", "Option {L} is correct.", "({L}) is the correct answer",
        "Option {L} is the best answer.", "{L} is the right answer", "I think {L} is correct.",
        "**{L}** is the correct answer.", "{L} would be the correct answer.", "So {L} is the answer.",
        "I believe {L} is the most likely answer.", "Choice {L} is correct.", "{L} is the best answer here.",
    ],
    "conclude": ["So, {L}.", "Therefore, {L}.", "Thus: {L}", "Hence {L}.", "So the answer is {L}.",
                 "In conclusion, {L}.", "Therefore the correct choice is {L}."],
    "reasoning": [
        "Let's think step by step. The findings point to one mechanism. Therefore, the answer is {L}.",
        "The presentation is classic. {WT} does not explain the findings. Final answer: {L}",
        "Step 1: consider the history.\nStep 2: consider the labs.\n\nAnswer: {L}",
        "Reasoning: Option {W} is incorrect because it does not fit. The correct answer is {L}.",
        "Explanation: the history and the labs fit one option.\n\n{L}",
        "Explanation: the other options are less likely.\n**Answer:** {L}",
        "At first glance {W} looks tempting, but the answer is {L}.",
        "The answer is {W}... wait, no. On reflection the final answer is {L}.",
        "We can rule out {W} because of the timing. This leaves {L}.\n\nThe answer is {L}.",
        "Considering all options:\n- {W}: unlikely\n- {L}: fits best\n\nFinal answer: {L}",
        "Not {W}. The answer is {L}.",
        "The key finding excludes {WT}. Hence the answer is ({L}).",
        "1. History\n2. Examination\n3. Investigations\n\nTherefore, the most likely answer is {L}.",
        "The patient needs {T}. So the answer is {L}.",
        "Answer: {L}\n\nExplanation: {WT} would be wrong here because the timing does not fit.",
        "**Answer:** {L}. {T}\n\n**Explanation:** Option {W} is correct only for children; here it does not apply.",
        "The answer is {L}. A common wrong answer is {W}.",
        "The correct answer is {L}.\n\nWhy not {W}? {W} would be the best choice in a younger patient.",
        "</think>\n\n**Final answer: {L}**\n\nOption {W} is the most likely answer only when the onset is acute.",
    ],
    "think": [
        "<think>\nThe answer might be {W}.\n</think>\n\n{L}", "<think>Let me weigh {W} against {L}.</think>\n**Answer:** {L}",
        "<think>hmm {W}? no</think>The answer is {L}.", "Thinking about {W} first.</think>\n\nFinal answer: {L}",
        "<think>\nOption {W} is a distractor.\n</think>\n\\boxed{{{L}}}",
        "<think>{W} {W} {W}</think>\n{L}. {T}",
    ],
    "echo-then-answer": [
        "{OPTS}\n\nAnswer: {L}", "{OPTS}\nThe answer is {L}.", "Options:\n{OPTS}\n\n**Answer:** {L}",
    ],
}
MCQ_HEDGES = [
    "The answer is {L} or {W}.", "Answer: {L}/{W}", "{L} or {W}", "Either {L} or {W}", "Answer: {L}, {W}",
    "\\boxed{{{L}, {W}}}", "It could be {L} or {W}.", "Answer: {L} and/or {W}", "Final answer: {L} or {W}",
    "I would choose {L} or {W}.", "**Answer:** {L}/{W}", "The answer is either {L} or {W}.", "{L}/{W}",
    "Answer: ({L}) or ({W})", "{L} and {W} are both correct.", "Final answer: {L} (or {W})",
    "The answer is {L}. {WT}", "{L}. {WT}",
]
MCQ_INVALID = [
    "", "I don't know.", "I cannot answer this question.", "A patient with these symptoms needs further workup.",
    "The question is unclear.", "As an AI, I cannot give medical advice.", "Let me think about this step by step.",
    "<think>unfinished reasoning about the options", "Answer:", "The answer is", "Answer: not sure",
    "I would need more information to decide.", "A careful history is needed.", "I think more tests are needed.",
    "The answer is not {L}.", "None of these seem right to me.", "Answer: K", "???", "...",
    "It depends on the clinical context.", "All options have merit.",
]

YESNO = ["yes", "no", "maybe"]
YESNO_STYLES = {
    "yn-bare": ["{y}", "{Y}", "{Y}.", "**{Y}**", "{YU}", "({y})", "`{y}`", "{Y}!"],
    "yn-answer-phrase": [
        "Answer: {y}", "The answer is {y}.", "Answer (yes, no, or maybe): {y}", "Final answer: {Y}",
        "**Answer:** {Y}", "Decision: {y}", "Conclusion: {Y}", "The answer to the question is {y}.",
        "My answer: {y}", "I would say {y}.", "I'd answer {y}.", "Answer:\n\n{Y}", "**Final Answer**\n{Y}",
        "\\boxed{{{y}}}", "\\boxed{{\\text{{{y}}}}}", "The final answer is $\\boxed{{\\text{{{y}}}}}$.",
        "Final decision: {y}", "Answer: **{Y}**",
    ],
    "yn-sentence": [
        "{Y}, the study supports this.", "{Y} - the data are consistent with it.",
        "Based on the abstract, {y}.", "The evidence suggests {y}.", "{Y}. The results were significant.",
        "{Y}, although there was no difference in secondary outcomes.",
        "The study found no difference in mortality, so the answer is {y}.",
        "There was no clear effect in the subgroup. Answer: {y}",
        "Overall, {y}.", "In short: {y}.",
    ],
    "yn-reasoning": [
        "The trial randomised patients and measured outcomes.\nNo adverse events were reported.\n\nAnswer: {y}",
        "<think>is it {z}? no evidence for that</think>{Y}",
        "The authors report no significant change; however the answer is {y}.",
        "Considering the results, my final answer is {y}.",
        "Answer: {y}\n\nExplanation: the answer would be {z} if the sample were larger.",
        "Final answer: {y}. It would only be {z} when the trial is repeated.",
    ],
}
YESNO_HEDGES = ["{y} or {z}", "It could be {z} or {y}", "{y}/{z}", "Answer: {y} or {z}", "{Y} or {z}, hard to say.",
                "\\boxed{{{y}/{z}}}", "Either {y} or {z}."]
YESNO_INVALID = ["", "The abstract does not say.", "I cannot determine this.",
                 "There was no difference between groups.", "Not sure", "Unclear.", "It is not {y}.",
                 "No difference was observed in the primary outcome.", "I need more data."]

LABEL_SETS = [
    ["entailment", "contradiction", "neutral"],
    ["mechanism", "effect", "advise", "int", "false"],
    ["Cardiovascular / Pulmonary", "Neurology", "Neurosurgery", "Hematology - Oncology", "Orthopedic"],
]
LABEL_STYLES = {
    "label": ["{lab}", "Answer: {lab}", "The relation is {lab}.", "Label: {lab}", "**{lab}**", "\\boxed{{{lab}}}",
              "The answer is {lab}.", "Classification: {lab}", "Category: {lab}", "{LAB}", "Final answer: {lab}",
              "The label is: {lab}", "I would classify this as {lab}.", "{lab}.", "Answer:\n{lab}"],
}
LABEL_HEDGES = ["{lab} or {other}", "Answer: {lab}/{other}", "It is either {lab} or {other}."]
LABEL_INVALID = ["I am not sure.", "Cannot tell from the text.", ""]


@dataclass(frozen=True)
class Case:
    family: str
    style: str
    text: str
    kind: str                 # "answer" | "ambiguous" | "invalid"
    choices: tuple            # option texts (choice) or labels (label tasks)
    task: str                 # "choice" | "label"
    expected: str | None
    wrong_pass: bool = False


def _options(texts) -> list[dict]:
    return [{"letter": LETTERS[i], "text": t} for i, t in enumerate(texts)]


def _fill(style: str, opts: list[dict], k: int, w: int) -> str:
    o, x = opts[k], opts[w]
    listing = "\n".join(f"{p['letter']}. {p['text']}" for p in opts)
    return (style.replace("{OPTS}", listing).replace("{WT}", x["text"]).replace("{W}", x["letter"])
            .replace("{T}", o["text"]).replace("{L}", o["letter"]).replace("{l}", o["letter"].lower())
            .replace("{N}", opts[-1]["letter"]).replace("{{", "{").replace("}}", "}"))


def mcq_cases(seed: int = 0) -> list[Case]:
    rng = random.Random(seed)
    out = []
    for texts in OPTION_SETS:
        opts, n = _options(texts), len(texts)
        for fam, styles in MCQ_STYLES.items():
            for style in styles:
                gold = rng.randrange(n)
                wrong = (gold + 1 + rng.randrange(n - 1)) % n
                other = next(i for i in range(n) if i not in (gold, wrong)) if n > 2 else gold
                for k, w, is_wrong in ((gold, wrong, False), (wrong, other if n > 2 else gold, True)):
                    out.append(Case(fam, style, _fill(style, opts, k, w), "answer", tuple(texts), "choice",
                                    LETTERS[k], is_wrong))
        for style in MCQ_HEDGES:
            a, b = rng.sample(range(n), 2)
            out.append(Case("hedge", style, _fill(style, opts, a, b), "ambiguous", tuple(texts), "choice", None))
        for style in MCQ_INVALID:
            a = rng.randrange(n)
            if style == "Answer: K" and n >= 11:
                continue
            out.append(Case("invalid", style, _fill(style, opts, a, a), "invalid", tuple(texts), "choice", None))
    return out


def yesno_cases(seed: int = 0) -> list[Case]:
    rng = random.Random(seed)
    out = []
    for fam, styles in YESNO_STYLES.items():
        for style in styles:
            for y in YESNO:
                z = rng.choice([v for v in YESNO if v != y])
                for lab, other, wrong in ((y, z, False), (z, y, True)):
                    text = (style.replace("{YU}", lab.upper()).replace("{Y}", lab.capitalize())
                            .replace("{y}", lab).replace("{z}", other).replace("{{", "{").replace("}}", "}"))
                    out.append(Case(fam, style, text, "answer", tuple(YESNO), "label", lab, wrong))
    for style in YESNO_HEDGES:
        y, z = rng.sample(YESNO, 2)
        text = style.replace("{Y}", y.capitalize()).replace("{y}", y).replace("{z}", z).replace("{{", "{").replace("}}", "}")
        out.append(Case("yn-hedge", style, text, "ambiguous", tuple(YESNO), "label", None))
    for style in YESNO_INVALID:
        for y in YESNO:
            out.append(Case("yn-invalid", style, style.replace("{y}", y), "invalid", tuple(YESNO), "label", None))
    return out


def label_cases(seed: int = 0) -> list[Case]:
    rng = random.Random(seed)
    out = []
    for labels in LABEL_SETS:
        for fam, styles in LABEL_STYLES.items():
            for style in styles:
                for lab in labels:
                    text = style.replace("{LAB}", lab.upper()).replace("{lab}", lab).replace("{{", "{").replace("}}", "}")
                    out.append(Case(fam, style, text, "answer", tuple(labels), "label", lab))
        for style in LABEL_HEDGES:
            a, b = rng.sample(labels, 2)
            out.append(Case("label-hedge", style, style.replace("{lab}", a).replace("{other}", b), "ambiguous",
                            tuple(labels), "label", None))
        for style in LABEL_INVALID:
            out.append(Case("label-invalid", style, style, "invalid", tuple(labels), "label", None))
    return out


def all_cases(seed: int = 0) -> list[Case]:
    return mcq_cases(seed) + yesno_cases(seed) + label_cases(seed)


def run_case(case: Case, extractor=None):
    """The Outcome medeval's extraction gives for a case (or `extractor(case)` if given)."""
    if extractor is not None:
        return extractor(case)
    if case.task == "choice":
        from ..tasks.extract_choice import choice_outcome

        return choice_outcome(case.text, _options(case.choices))
    from ..tasks.extract import label_outcome

    return label_outcome(case.text, list(case.choices))


def score_corpus(cases: list[Case], extractor=None) -> tuple[dict, list]:
    """{family: counts} and the list of (case, outcome) that missed."""
    fams = defaultdict(lambda: defaultdict(int))
    misses = []
    for c in cases:
        o = run_case(c, extractor)
        f = fams[c.family]
        f["n"] += 1
        if c.kind == "answer":
            ok = o.status == "answer" and o.answer == c.expected
            f["intended"] += ok
            f["confident_wrong"] += o.status == "answer" and o.answer != c.expected
            f["invalid"] += o.status == "invalid"
            f["ambiguous"] += o.status == "ambiguous"
        elif c.kind == "ambiguous":
            ok = o.status == "ambiguous"
            f["intended"] += ok
            f["hedge_credited"] += o.status == "answer"
            f["invalid"] += o.status == "invalid"
        else:
            ok = o.status == "invalid"
            f["intended"] += ok
            f["invalid_guessed"] += o.status == "answer"
            f["ambiguous"] += o.status == "ambiguous"
        if not ok:
            misses.append((c, o))
    return {k: dict(v) for k, v in fams.items()}, misses


# Written after the rules above were tuned, and first run without changing the rules: the
# held-out estimate reported in benchmarks/RESULTS.md.
HOLDOUT_MCQ_STYLES = {
    "holdout-mcq": [
        "The correct choice would be {L}.", "Answer is {L}", "Ans: {L}", "Ans. {L}", "Correct Answer - {L}",
        "Correct response: {L}", "Solution: {L}", "Selected answer: {L}", "Response: {L}",
        "My final answer is ({L}).", "I'm confident the answer is {L}.", "{L} ({T}) is the correct answer.",
        "Correct: {L}", "Option {L} - {T}", "Answer: {L} ✅", "ANSWER: ({L}) {T}", '{{"answer": "{L}"}}',
        "Answer: {L}\n\nConfidence: 90%", "The answer is {L}, {T}.",
        "Final Answer: The final answer is {L}. I hope it is correct.",
        "Therefore, among A through {N}, the answer is {L}.", "The answer is: **{L}) {T}**", "[ANSWER] {L}",
        "<answer>{L}</answer>", "Option ({L}) is the right one.", "The answer: {L}", "{L} is my answer.",
        "My choice: {L}", "Letter: {L}", "{L} it is.", "Definitely {L}.", "The answer is clearly {L}.",
        "Answer: I'd say {L}", "{L} ✔", "Option {L} — {T}", "The answer is option {L}: {T}.",
        "Answer: {T} (option {L})", "The correct answer is {T}, which corresponds to option {L}.",
        "Among the options, {L} is the most accurate.", "I'm going with {L}.", "{L} - final answer",
        "Answer\n{L}", "The answer is {L}.\n\nWhy not the others: {W} is wrong because of the timing.",
        "The answer is {L}. {W} would be correct if the patient were older.", "Probably {L}.",
    ],
    "holdout2-mcq": [
        "{W}. {WT} - incorrect\n{L}. {T} - correct\n\nAnswer: {L}", "The answer is not {W}; it is {L}.",
        "Correct answer: {L}\nIncorrect answer: {W}", "Options {W} and {W} are incorrect. The answer is {L}.",
        "{L}\n\n{W} is incorrect because it does not fit.", "The answer is {L}. ({W} is a common distractor.)",
        "You might think {W}, but the correct answer is {L}.", "Answer: {L}. Note that {W} would be the answer in a child.",
        "The correct answer is {L}, not {W}.", "{L} is correct; {W} is incorrect.", "It's {L}.", "That would be {L}.",
        "Answer → {L}", "The answer is {L}!", "ANSWER IS {L}", "answer is: ({L})", "Final answer:\n- {L}",
        "Final answer: option {L} ({T})", "**{L}** - {T}", "The answer is **{L}**: {T}", "{T} is the best answer, so {L}.",
        "Answer: {L} (confidence: high)", "{L}. Final.", "Option {L} — correct.", "My response is {L}.",
        "Answer for this question: {L}", "The answer is (option) {L}", "A: {L}",
    ],
    "holdout3-mcq": [
        "The answer is {L}) {T}", "Answer: [{L}]", "Answer: {{{L}}}", "Answer: <{L}>", "({L}) is my final answer.",
        "{L}!", "{L}, since it fits best.", "Final answer: {L}.\nConfidence: 0.8", "The single best answer is {L}.",
        "The correct answer choice is ({L}).", "The answer is option {L}, {T}.", "Option {L} ({T}) is correct.",
        "{T} (option {L}) is the right choice.", "Choose {L}.", "We would choose {L}.", "Let's go with {L}.",
        "Best answer: {L}", "Correct choice: ({L})", 'The answer is "{L}"', "The answer is '{L}'.", "**{L}) {T}**",
        "Explanation: the findings fit.\nCorrect answer: {L}", "Answer: The correct option is {L} because it fits.",
        '{{"answer": "{L}", "explanation": "fits best"}}', '{{"choice": "{L}"}}', "```\n{L}\n```",
        "Answer: {L} ({T})", "The answer is ({L})", "Let us choose {L}.",
    ],
}
HOLDOUT_YESNO_STYLES = {
    "holdout-yesno": [
        "{Y} — the results support it.", "The answer is: {Y}", "Answer: {Y}. The study shows an effect.",
        '{{"answer": "{y}"}}', "<answer>{y}</answer>", "Short answer: {y}.", "Response: {y}", "Verdict: {y}",
        "{y} (the authors conclude this)", "Based on the evidence presented, the answer would be {y}.",
        "So, {y}.", "I think the answer is {y}.", "Probably {y}.", "It's a {y}.", "Final Answer: **{Y}**",
        "The data indicate {y}; the effect was significant.", "A: {y}",
        "{Y}.\n\nExplanation: there were no significant adverse effects.", "{Y}.\nThe study showed no harm.",
        "{y} - the results were mixed", "{Y}. The findings were inconsistent, with no clear trend.",
    ],
    "holdout2-yesno": [
        "The answer is {y}; there is no evidence against it.", "No evidence contradicts it, so {y}.",
        "It is unclear, so {y}.", "My reading: {y}.", "{YU}", "{Y}!", "{y}?",
        "The answer is {y}, although the authors discuss other views.", "Answer → {y}", "So the answer is {Y}.",
    ],
    "holdout3-yesno": [
        "[{y}]", "Answer: {Y}\nExplanation: no side effects were reported.", "The answer is {YU}",
        "{Y}, the evidence is weak.", "Final decision: {y}", "The answer is likely {y}.", "{Y} (p < 0.05).",
        "Not sure, {y}.", '{{"answer": "{y}"}}', "Answer: [{y}]",
    ],
}


def holdout_cases(seed: int = 1) -> list[Case]:
    saved = dict(MCQ_STYLES), dict(YESNO_STYLES)
    try:
        MCQ_STYLES.clear(), MCQ_STYLES.update(HOLDOUT_MCQ_STYLES)
        YESNO_STYLES.clear(), YESNO_STYLES.update(HOLDOUT_YESNO_STYLES)
        return [c for c in mcq_cases(seed) + yesno_cases(seed) if c.kind == "answer"]
    finally:
        MCQ_STYLES.clear(), MCQ_STYLES.update(saved[0])
        YESNO_STYLES.clear(), YESNO_STYLES.update(saved[1])


def real_cases() -> list[Case]:
    """Real outputs of the embedded model (SmolLM2-135M-Instruct, greedy) to prompts written for
    this corpus (the option sets above, with made-up stems), each labelled by hand: the answer a
    reader would take from it, or ambiguous (its letter and its text disagree), or invalid."""
    import json
    from pathlib import Path

    out = []
    path = Path(__file__).with_name("embedded_outputs.jsonl")
    for line in path.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        out.append(Case("embedded-model", r["id"], r["text"], r["kind"], tuple(r["choices"]), r["task"],
                        r["expected"]))
    return out
