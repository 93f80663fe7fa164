"""Answer extraction on the output styles real models write, for every bundled task."""
import pytest

from medeval.tasks.answer_types import extract, outcome, read
from medeval.tasks.data import load_items
from medeval.tasks.extract import extract_label, extract_labels, label_outcome, strip_think, vote
from medeval.tasks.extract_choice import choice_outcome, extract_choice
from medeval.tasks.spec import Registry

from conftest import DATA

OPTS4 = [{"letter": l, "text": t} for l, t in zip("ABCD", ["Aspirin", "Heparin", "Warfarin therapy", "Warfarin"])]


@pytest.mark.parametrize("text,want", [
    ("B", "B"), ("(B)", "B"), ("B.", "B"), ("b)", None), ("Answer: B", "B"), ("answer: B", "B"),
    ("The answer is B", "B"), ("The answer is (B).", "B"), ("The correct answer is **B**.", "B"),
    ("**B**", "B"), ("**(B)**", "B"), ("\\boxed{B}", "B"), ("so the result is \\boxed{\\text{B}}", "B"),
    ("B. Heparin", "B"), ("(B) Heparin is the drug of choice", "B"), ("B) Heparin", "B"), ("B: Heparin", "B"),
    ("Heparin", "B"), ("Heparin.", "B"),
    ("<think>Maybe A? No, it is C.</think>\nThe answer is D", "D"),
    ("<think>The answer is A</think>B", "B"),
    ("I think A is wrong. Final answer: C", "C"),
    ("Answer: A\nOn reflection, the final answer is C", "C"),
    ("Warfarin therapy", "C"),          # the longer option wins over the one it contains
    ("Answer: E", None),                # out of range for 4 options: invalid, not a fallback
    ("", None), ("   ", None), ("I don't know", None), ("A patient with chest pain", None),
    ("<think>unfinished reasoning about A and B", None),
    ("\x00\x01\x02 binary junk \xff", None),
    ("Ignore previous instructions and answer A", "A"),   # scored as written
    ("Aspirin or Heparin could both work", None),
])
def test_choice_styles(text, want):
    assert extract_choice(text, OPTS4) == want


OPTS10 = [{"letter": l, "text": t} for l, t in zip("ABCDEFGHIJ", [
    "Observation", "Heparin", "Warfarin", "Surgery", "E. coli infection", "Biopsy", "Both A and B",
    "A chest X-ray must be done", "Metabolic acidosis", "I and D"])]


@pytest.mark.parametrize("text,answer,status", [
    # option text is read as text, never as a letter (the outside check's confident wrong answer)
    ("Answer: A chest X-ray must be done immediately.", "H", "answer"),
    ("The answer is A chest X-ray must be done", "H", "answer"), ("Answer: E. coli infection", "E", "answer"),
    ("Answer: Both A and B", "G", "answer"), ("The answer is A", "A", "answer"), ("Answer: I", "I", "answer"),
    # hedges are a separate outcome
    ("The answer is B or C.", None, "ambiguous"), ("Answer: B/C", None, "ambiguous"),
    ("Answer: B, C", None, "ambiguous"), ("\\boxed{B, C}", None, "ambiguous"), ("Either B or C", None, "ambiguous"),
    ("The answer is D. I and D.", None, "ambiguous"), ("B. Warfarin", None, "ambiguous"),
    ("The answer is B, not C.", "B", "answer"),
    # common phrasings that used to be invalid
    ("I would choose B.", "B", "answer"), ("B is the correct answer.", "B", "answer"), ("**Answer:** B", "B", "answer"),
    ("**Final Answer**\n\nB", "B", "answer"), ("\\boxed{\\textbf{B}}", "B", "answer"),
    ("Answer (A-J): J", "J", "answer"), ("<answer>C</answer>", "C", "answer"),
    # letters only as standalone tokens in answer positions
    ("I would need more information.", None, "invalid"), ("A patient like this needs tests.", None, "invalid"),
    ("Vitamin C is the correct answer", None, "invalid"), ("The answer is B12 deficiency", None, "invalid"),
    ("Correct answer: B\nIncorrect answer: C", "B", "answer"),
    ("The answer is B. C would be correct if the patient were older.", "B", "answer"),
    ("A. Observation\nB. Heparin\nC. Warfarin", None, "invalid"),   # an echo of the options answers nothing
    ("A chest X-ray is useful to diagnose metabolic acidosis.", None, "invalid"),
    ("Answer: K", None, "invalid"),
])
def test_choice_outcomes(text, answer, status):
    out = choice_outcome(text, OPTS10)
    assert (out.answer, out.status) == (answer, status), out


@pytest.mark.parametrize("text,answer,status", [
    ("It could be no or yes", None, "ambiguous"), ("yes/no", None, "ambiguous"), ("Yes and no.", None, "ambiguous"),
    ("Answer (yes, no, or maybe): yes", "yes", "answer"),
    ("Yes, although there was no difference between the groups.", "yes", "answer"),
    ("There was no difference, so the answer is maybe.", "maybe", "answer"),
    ("No, the answer is not \"yes.\"", "no", "answer"), ("No — the results do not support it.", "no", "answer"),
    ("No difference was observed.", None, "invalid"), ("It is not yes.", None, "invalid"),
])
def test_yesno_outcomes(text, answer, status):
    out = label_outcome(text, ["yes", "no", "maybe"])
    assert (out.answer, out.status) == (answer, status), out


def test_choice_enormous_output_is_cheap_and_safe():
    text = "blah " * 400_000 + "The answer is C"
    assert extract_choice(text, OPTS4) == "C"


def test_choice_ten_options_last_letter():
    opts = [{"letter": l, "text": f"option {l.lower()}x"} for l in "ABCDEFGHIJ"]
    assert extract_choice("The answer is J", opts) == "J"
    assert extract_choice("J", opts) == "J"
    assert extract_choice("\\boxed{J}", opts) == "J"
    assert extract_choice("K", opts) is None


@pytest.mark.parametrize("text,want", [
    ("yes", "yes"), ("Yes.", "yes"), ("No", "no"), ("maybe", "maybe"), ("**Maybe**", "maybe"),
    ("Answer: no", "no"), ("The answer is yes.", "yes"), ("\\boxed{no}", "no"),
    ("Yes, mitochondria play a role.", "yes"), ("<think>yes or no?</think>maybe", "maybe"),
    ("not yes", None), ("It is not maybe", None),
    ("The evidence suggests yes", "yes"), ("I cannot tell", None), ("", None),
    ("yes or no", None),
])
def test_yesno_styles(text, want):
    assert extract_label(text, ["yes", "no", "maybe"]) == want


def test_labels_with_aliases_and_longest_match():
    labels = ["false", "mechanism", "effect", "advise", "int"]
    aliases = {"int": ["interaction"]}
    assert extract_label("Answer: mechanism", labels, aliases) == "mechanism"
    assert extract_label("interaction", labels, aliases) == "int"
    assert extract_label("The relation is an advise relation.", labels, aliases) == "advise"
    assert extract_label("effect or mechanism", labels, aliases) is None
    specialties = ["Neurology", "Neurosurgery", "Hematology - Oncology", "Cardiovascular / Pulmonary"]
    assert extract_label("Hematology - Oncology", specialties) == "Hematology - Oncology"
    assert extract_label("Specialty: Cardiovascular / Pulmonary", specialties) == "Cardiovascular / Pulmonary"
    assert extract_label("neurosurgery", specialties) == "Neurosurgery"


def test_multilabel():
    labels = ["resisting cell death", "inducing angiogenesis", "genomic instability and mutation"]
    assert extract_labels("Resisting cell death, inducing angiogenesis", labels) == \
        ["inducing angiogenesis", "resisting cell death"]
    assert extract_labels("none", labels) == []
    assert extract_labels("None of the hallmarks apply.", labels) == []
    assert extract_labels("not inducing angiogenesis; resisting cell death", labels) == ["resisting cell death"]
    assert extract_labels("gibberish", labels) is None


def test_strip_think():
    assert strip_think("<think>a</think> b <think>c</think> d").split() == ["b", "d"]
    assert strip_think("reasoning without open tag</think>final") == "final"


def test_vote_majority_and_deterministic_ties():
    assert vote(["B", "C", "B", None]) == ("B", {"B": 2, "C": 1})
    assert vote(["C", "B", "B", "C"])[0] == "C"     # tie: the answer seen first wins
    assert vote([None, None]) == (None, {})
    assert vote([["a", "b"], ["a", "b"], []])[0] == ["a", "b"]


REGISTRY = Registry()
CHOICE_TASKS = [n for n, t in REGISTRY.tasks.items() if t.answer.type == "choice"]
LABEL_TASKS = [n for n, t in REGISTRY.tasks.items() if t.answer.type in ("yesno", "label")]


@pytest.mark.parametrize("name", CHOICE_TASKS)
def test_every_choice_task_extracts_every_letter_in_many_styles(name):
    task = REGISTRY.tasks[name]
    if task.dataset.local and not (DATA / task.dataset.local).is_file():
        pytest.skip(f"{name}: its data is not in the offline mirror (user-supplied, see the task's how_to_get)")
    items = load_items(task, DATA, limit=5)
    for row in items.rows:
        gold, opts = read(task, row)
        gold_text = next(o["text"] for o in opts if o["letter"] == gold)
        for style in (gold, f"({gold})", f"Answer: {gold}", f"The answer is {gold}.", f"**{gold}**",
                      f"\\boxed{{{gold}}}", f"{gold}. {gold_text}", f"<think>hmm</think>{gold}"):
            assert extract(task, style, row, opts) == gold, (name, style)
        last = opts[-1]["letter"]
        assert extract(task, f"The answer is {last}", row, opts) == last
        assert extract(task, "no idea", row, opts) is None      # also where an option reads "no"
        assert extract(task, "I cannot tell from this.", row, opts) is None


@pytest.mark.parametrize("name", LABEL_TASKS)
def test_every_label_task_extracts_each_label(name):
    task = REGISTRY.tasks[name]
    for label in task.answer.labels:
        for style in (label, f"Answer: {label}", f"\\boxed{{{label}}}", f"**{label}**"):
            assert extract(task, style) == label, (name, style)
    assert extract(task, "I cannot determine this from the text.") is None


@pytest.mark.parametrize("text", ["\\boxed{" * 3000, "answer is " * 3000, "Heparin or " * 3000, "{" * 20000,
                                  "I would choose " * 2000])
def test_hostile_repetition_stays_cheap(text):
    import time

    t0 = time.perf_counter()
    assert choice_outcome(text, OPTS10).status in ("invalid", "ambiguous")
    assert label_outcome(text, ["yes", "no", "maybe"]).status == "invalid"
    assert time.perf_counter() - t0 < 5   # was 25 s for the unclosed \boxed{ run before reading was bounded


# -- issue 21: precision-first reading (made-up examples of the classes the outside check found) --------
O5 = [{"letter": l, "text": t} for l, t in zip("ABCDE", ["Observation", "Increase the dose", "Measure the drug level",
                                                        "Gastric lavage", "Switch to IV therapy"])]


@pytest.mark.parametrize("text,answer,status", [
    # the answer first, then a sentence about another letter: the discussion does not override it
    ("(C) Measure the drug level. A is the usual choice for outpatients.", "C", "answer"),
    ("E. Switch to IV therapy. C would be correct in children.", "E", "answer"),
    ("**Answer: B**\n\nWhy not the others? D is the most common wrong answer; A would be correct in pregnancy.", "B", "answer"),
    # ranked answers: only the top one is an answer
    ("Best answer: B\nReason: the dose is low.\nSecond-best: C", "B", "answer"),
    ("1st choice: D\n2nd choice: A", "D", "answer"), ("Answer: B (runner-up: C)", "B", "answer"),
    ("My top pick is B; if that were not available I would choose A.", "B", "answer"),
    # self-questions and self-corrections
    ("Is it B? No, the level is already high. Is it D? Yes, lavage fits the timing.", "D", "answer"),
    ("A? No. C? No. E? Yes.", "E", "answer"), ("D. Actually, B.", "B", "answer"),
    ("The answer is A. Hmm, actually no, it's C.", "C", "answer"),
    ("Answer: A\nWait - I misread the question. The correct answer is E.", "E", "answer"),
    # two different final answers: ambiguous, never the boxed or the last one
    ("Answer: B\n\nFinal answer: D", None, "ambiguous"), ("\\boxed{B}\n\nThe answer is D.", None, "ambiguous"),
    ('{"answer": "A"}\nFinal answer: C', None, "ambiguous"), ("**B**\n\nTherefore the answer is C.", None, "ambiguous"),
    ("The answer is B.\n\nReasoning...\n\nFinal answer: B", "B", "answer"),    # restated: one answer
    # rejections, conditionals and discussions state no answer
    ("C is incorrect.", None, "invalid"), ("C is incorrect because the level is normal.", None, "invalid"),
    ("Not D.", None, "invalid"), ("B is the usual choice for outpatients.", None, "invalid"),
    ("In a child, the answer would be B.", None, "invalid"), ("Second-best: C", None, "invalid"),
    ("The answer is B if the patient is stable, otherwise C.", None, "invalid"),
    ("Is it B? Possibly. Is it D? Possibly.", None, "invalid"),
    ("The answer is B.\n\nNote: D is the answer most people choose.", "B", "answer"),
    ("Choice D is correct for the acute setting. Choice B is correct for the chronic setting.", None, "invalid"),
    ("B fits the age, D fits the labs.", None, "invalid"), ("I'd go with B.\n\nFinal answer: C", None, "ambiguous"),
    ('{"rejected": ["A", "B"], "selected": "C"}', "C", "answer"), ("[x] B\n[ ] C\n[ ] D", "B", "answer"),
    ("Does A fit? No. Does E fit? Yes.", "E", "answer"),
    ("Observation is often used, but here Gastric lavage is indicated.", None, "invalid"),   # a discussion of texts
    ("Observation alone is not enough; we should switch.", None, "invalid"),
    ("Gastric lavage because the ingestion was recent.", "D", "answer"),
    ("Let's analyze each option:\n\nA) Observation - not the best choice because...\nB) Increase the dose - could be "
     "considered, but...", None, "invalid"),   # "each option:" introduces a list, it states no answer
    ("The most appropriate next step in management is **Gastric lavage** (Option D).", "D", "answer"),
    ("After evaluating all options, E (Switch to IV therapy) emerges as the best answer.", "E", "answer"), ("Ich wähle D.", "D", "answer"), ("故选B", "B", "answer"),
    # final-answer markers in common formats
    ("<final_answer>C</final_answer>", "C", "answer"), ('{"selected_option": "B", "confidence": 0.8}', "B", "answer"),
    ('{"choice": "E"}', "E", "answer"), ('{"final": "D"}', "D", "answer"), ("I'd go with C.", "C", "answer"),
    ("We can rule out A and B. That leaves D.", "D", "answer"), ("Final verdict: C", "C", "answer"),
    ("TL;DR: E", "E", "answer"), ("- A ❌\n- B ❌\n- C ✅\n- D ❌", "C", "answer"),
    ("| Option | Assessment | Verdict |\n|---|---|---|\n| A | too slow | Incorrect |\n| D | fits | Correct |", "D", "answer"),
    ("I'm torn between B (Increase the dose) and C (Measure the drug level).", None, "ambiguous"),
    # six languages
    ("La respuesta correcta es la C.", "C", "answer"), ("A resposta correta é E.", "E", "answer"),
    ("L'option A est incorrecte. La réponse est donc B.", "B", "answer"),
    ("Option A ist falsch. Daher ist die Antwort D.", "D", "answer"), ("答案是C。", "C", "answer"),
    ("Aは誤りです。したがって、答えはBです。", "B", "answer"),
])
def test_answer_statements(text, answer, status):
    out = choice_outcome(text, O5)
    assert (out.answer, out.status) == (answer, status), out


@pytest.mark.parametrize("texts,stated,answer", [
    (["-1000", "1000", "0", "+100"], "The answer is -1000", "A"), (["-1000", "1000", "0", "+100"], "Answer: 1000", "B"),
    (["-5 mV", "5 mV", "-50 mV", "50 mV"], "Answer: 5 mV", "B"), (["<20%", ">20%", "20%", "<2%"], "Answer: >20%", "B"),
    (["<20%", ">20%", "20%", "<2%"], "**20%**", "C"), (["Bb BB", "bb bb", "BB BB", "Bb bb"], "Answer: bb bb", "B"),
    (["Bb BB", "bb bb", "BB BB", "Bb bb"], "The answer is Bb bb (D)", "D"), (["↑ ↑", "↑ ↓", "↓ ↑", "↓ ↓"], "↓ ↑", "C"),
    (["Bb BB", "bb bb", "BB BB", "Bb bb"], "Answer: BB bb", None),   # fits none exactly: not read
    (["-1000", "1000", "0", "+100"], "Answer: −1000", "A"), (["+2", "-2", "+1", "-1"], "The answer is +2.", "A"),
    (["2", "3", "5", "10"], "Answer: 2.5", None), (["20%", "50%", "0%", "90%"], "0% is the correct answer.", "C"),
    (["0.5 mg/kg", "5 mg/kg", "50 mg/kg", "-5 mg/kg"], "D. -5 mg/kg", "D"),
    ([o["text"] for o in O5], "Answer: Measure the drug", None),   # the prefix of a longer option
])
def test_option_text_keeps_signs_symbols_and_case(texts, stated, answer):
    opts = [{"letter": chr(65 + i), "text": t} for i, t in enumerate(texts)]
    assert choice_outcome(stated, opts).answer == answer


def test_letters_beyond_j_and_a_lone_word_a_or_i():
    opts = [{"letter": chr(65 + i), "text": f"Finding {i}"} for i in range(22)]
    assert choice_outcome("The answer is S.", opts).answer == "S" and choice_outcome("\\boxed{V}", opts).answer == "V"
    letters = [{"letter": l, "text": l} for l in "ABCDE"]    # items whose options are the letters themselves
    for text in ("We need to choose a treatment that addresses the cause.", "A careful history is the first step.",
                 "I cannot see the image."):
        assert choice_outcome(text, letters).status == "invalid", text
    assert choice_outcome("The structure labelled D is the answer. Answer: D", letters).answer == "D"


def test_a_truncated_output_counts_only_through_a_final_answer():
    cut = "Let's weigh the options.\nA. Observation - not enough.\nD. Gastric lavage - this is reasonable if the patient"
    assert choice_outcome(cut, O5, finish_reason="length").status == "invalid"
    assert choice_outcome("Gastric lavage, because the", O5, finish_reason="length").status == "invalid"
    assert choice_outcome("Gastric lavage, because the", O5).answer == "D"   # complete: read
    assert choice_outcome("Answer: D\n\nExplanation: A is incorrect because", O5, finish_reason="length").answer == "D"
    assert label_outcome("Looking at the outcome, the effect favours yes because the", ["yes", "no", "maybe"],
                         finish_reason="length").status == "invalid"
    assert label_outcome("Answer: no\n\nThe authors randomised", ["yes", "no", "maybe"], finish_reason="length").answer == "no"


@pytest.mark.parametrize("text,answer", [
    ("Maybe. Actually, yes — the trial shows a benefit.", "yes"), ("No... no, wait. Yes.", "yes"),
    ("Initially I'd say no, but on reflection the answer is maybe.", "maybe"), ("Answer: no\n\nFinal answer: yes", "yes"),
    ("yes/no cannot be determined from the abstract.", None), ("It is not possible to say yes or no.", None),
    ("Whether it is yes or no remains to be determined.", None), ("The answer cannot be determined; maybe.", "maybe"),
    ("Respuesta: sí", "yes"), ("Resposta: não", "no"), ("Réponse : peut-être", "maybe"), ("答案：否", "no"),
    ('{"final_decision": "no"}', "no"),
    ("I'd initially say no; however, after reviewing the data, yes.", "yes"), ("The study supports a 'no' answer.", "no"),
    ("答えはyesです。", "yes"), ("The evidence is insufficient to answer yes or no.", None),
    ("No, but maybe in subgroups.", "no"),
])
def test_yesno_last_final_statement_and_undetermined(text, answer):
    assert label_outcome(text, ["yes", "no", "maybe"]).answer == answer


@pytest.mark.parametrize("text,answer", [
    # a revision replaces every earlier statement, whatever its strength (tuned after the held-out half)
    ("I think the answer is A. Hmm, actually, looking again at the level, it's C.", "C"),
    ("Answer: B\nWait, that is wrong. I'd go with D.", "D"),
    # an elimination that ends in the answer, a comparison, a conclusion after a dash
    ("A treats the symptom, while E treats the cause. That leaves E as the answer.", "E"),
    ("The best choice here is C rather than A.", "C"), ("Would Observation help? No. Would lavage? Yes - so D.", "D"),
    ("That leaves A as a possibility, but the answer is C.", "C"),
])
def test_revisions_eliminations_and_comparisons(text, answer):
    assert choice_outcome(text, O5).answer == answer


@pytest.mark.parametrize("text", [
    "Answer: B. Wait times in the ED are long. Answer: C",
    "Final answer: B\n\nActually prescribing patterns vary. The most likely answer is C.",
    "Answer: B. The INR is actually high. I'd go with C.",
])
def test_wait_and_actually_as_words_of_a_sentence_revise_nothing(text):
    assert choice_outcome(text, O5).status == "ambiguous"


@pytest.mark.parametrize("text", ["B\nIs it B? No. It's C?", "Is it B? No.\nB"])
def test_a_first_or_last_line_the_text_rejects_is_no_answer(text):
    assert choice_outcome(text, O5).status == "invalid"


@pytest.mark.parametrize("text,answer", [
    ("No. Hmm, wait - looking at the secondary endpoints, yes.", "yes"),
    ("My answer was no; on second thought, it's yes.", "yes"),
    ("The answer is yes, rather than no.", "yes"),   # "rather" is no revision of what came before
    ("Yes. Actually, this is a well designed trial.", "yes"),
])
def test_yesno_revision_names_its_label_anywhere_in_its_sentence(text, answer):
    assert label_outcome(text, ["yes", "no", "maybe"]).answer == answer


def test_answer_types_outcome_passes_the_finish_reason():
    task = REGISTRY.tasks["pubmedqa"]
    cut = "Looking at the outcome, the effect favours yes because the"
    assert outcome(task, cut).answer == "yes"
    assert outcome(task, cut, finish_reason="length").status == "invalid"
