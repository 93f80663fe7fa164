"""HELD-OUT answer-style families (format and placeholders: style_families.py).

Do not read this file while writing or tuning extraction rules: it is the half of the corpus that
measures how the rules read phrasings they were not fitted to. Each family is the held-out twin
(`<class>.2`) of a tune family (`<class>.1`), written independently with different phrasings.
"""


def _F(task, split, styles, **kw) -> dict:
    """The fields of a style_families.Family (a dict here, so this module imports nothing)."""
    return dict(task=task, split=split, styles=tuple(styles), **kw)


HELD_OUT = {
    "reasoning-weigh.2": _F("choice", "held-out", [
        "We need to explain the whole picture.\n\n{X}) {XT} - seen in a different age group; discard.\n"
        "{W}) {WT} - would give the opposite lab pattern; discard.\n{L}) {T} - consistent.\n\n"
        "Hence, the correct option is {L}.",
        "Working through it: the first candidate, {WT}, is tempting but does not fit the timeline. The second, "
        "{XT}, is ruled out by the exam. The only option that remains is {T}.\n\nAnswer: ({L})",
        "Eliminating: {W} (too invasive at this stage), {X} (not indicated). The remaining best answer is {L}.",
        "Although {W} might seem correct at first glance, the key detail in the stem points away from it. "
        "After weighing everything, I'll go with {L}.",
        "Differential:\n1. {WT} - less likely\n2. {XT} - unlikely\n3. {T} - most likely\n\n"
        "Conclusion: the answer is {L}.",
        "{W} is wrong. {X} is wrong too, since the patient has no risk factors. So it must be {L}.",
        "Putting the findings together, the best choice here is {L} rather than {W}.",
        "Summary of reasoning: the presentation excludes {W} and {X}.\n\nMy final answer: {L}",
        "Weighing the options, {W} treats the symptom, not the cause, while {L} treats the cause. "
        "That leaves {L} as the answer.",
    ]),
    "answer-first.2": _F("choice", "held-out", [
        "{L}) {T}\n\nExplanation: {W} would be preferred in a patient with renal failure, which is not the case here.",
        "Correct: {L}.\n{W} is a classic trap; {X} is what you would do after imaging.",
        "The right answer is {L}. Students often pick {W} because it sounds familiar.",
        "{L}\n\n{WT} is the first-line option in mild cases; this case is severe.",
        "**({L}) {T}**\n\nOther options:\n- {W}: used for prophylaxis\n- {X}: contraindicated",
        "Answer - {L}.\nIf the patient were hemodynamically unstable, {W} would be the answer instead.",
        "{L}: {T}. By contrast, {X} is appropriate only for chronic disease.",
        "It's {L}. You might be tempted by {W}, but it is incorrect here.",
    ]),
    "ranked.2": _F("choice", "held-out", [
        "Most appropriate: {L}\nLess appropriate: {W}\nLeast appropriate: {X}",
        "Ranked answers:\n1. {L}\n2. {W}\n3. {X}",
        "Primary answer: {L}. Backup answer: {W}.",
        "{L} is the best answer, {W} is second best.",
        "First choice {L}, second choice {W}.",
        "The strongest candidate is {L} ({T}), followed by {W} ({WT}).",
        "If I had to rank them: {L}, then {W}, then {X}. Final answer: {L}",
    ]),
    "self-question.2": _F("choice", "held-out", [
        "What about {W}? That doesn't fit. And {X}? Also no. How about {L}? Yes, that explains the findings.",
        "Might it be {WT}? No. Might it be {T}? Definitely.",
        "Option {W}, correct? No. Option {L}, correct? Yes.",
        "Is the answer {W}? I don't think so. Is the answer {L}? I think so. Final: {L}",
        "So is it {X}? No - too rare. {W}? No - wrong timing. {L}? Yes, it matches.",
        "Would {WT} help this patient? No. Would {T}? Yes - so {L}.",
    ]),
    "self-correct.2": _F("choice", "held-out", [
        "I think the answer is {W}. Hmm, actually, looking again at the potassium, it's {L}.",
        "{W}? On second thought, {L}.",
        "Answer: {W}\nCorrection: the answer is {L}.",
        "It might be {W}... no wait, the question says chronic. So {L}.",
        "First I was leaning towards {W}, but after reconsidering, I'm changing my answer to {L}.",
        "My initial answer was {W}; the revised answer is {L}.",
    ]),
    "json.2": _F("choice", "held-out", [
        '{"Answer": "{L}"}',
        '{"answer_choice": "{L}"}',
        '{"option": "{L}"}',
        '{"selected": "{L}", "reason": "fits the timing"}',
        '{\n  "final_answer": "{L}"\n}',
        '```\n{"prediction": "{L}"}\n```',
        '{"correct_option": "{L}", "option_text": "{TJ}"}',
        '{"analysis": "{W} is less likely", "final": "{L}"}',
        '{"response": "{L}"}',
        '{"ANSWER": "{L}"}',
    ]),
    "xml.2": _F("choice", "held-out", [
        "<Answer>{L}</Answer>",
        "<final>{L}</final>",
        "<choice>{L}</choice>",
        "<thinking>{W} is less likely.</thinking>\n<final_answer>{L}</final_answer>",
        "<answer> {L} </answer>",
        "<output>\n<answer>{L}</answer>\n</output>",
        "<final_answer>Option {L}</final_answer>",
    ]),
    "table.2": _F("choice", "held-out", [
        "| Option | Correct? |\n|:---:|:---:|\n| {W} | No |\n| {L} | Yes |\n| {X} | No |",
        "| Letter | Option | Verdict |\n|---|---|---|\n| {L} | {T} | ✔ best answer |\n| {W} | {WT} | ✘ |",
        "| Option | Reason | Result |\n|---|---|---|\n| {X} | wrong population | Rejected |\n"
        "| {W} | wrong timing | Rejected |\n| {L} | fits | Selected |",
        "| Candidate | Likelihood |\n|---|---|\n| {L} | High |\n| {W} | Low |\n| {X} | Low |\n\n**Final answer: {L}**",
        "| Option | Decision |\n|---|---|\n| {L} | ✅ |\n| {W} | ❌ |",
    ]),
    "checkmarks.2": _F("choice", "held-out", [
        "{W} ❌\n{X} ❌\n{L} ✅",
        "✅ {L}. {T}",
        "- ❌ {W}. {WT}\n- ✅ {L}. {T}",
        "Option {W}: ✗\nOption {L}: ✓\nOption {X}: ✗",
        "✅ Answer: {L}",
        "☑ {L}\n☐ {W}\n☐ {X}",
    ]),
    "think.2": _F("choice", "held-out", [
        "<think>\nOption {W} is tempting. But the exam argues against it. {L} explains everything.\n</think>\n"
        "**{L}**",
        "<think>I'll compare {W} and {L}... {L} is better.</think>\n\nThe correct answer is ({L}).",
        "<think>\n{WT}? no. {T}? yes.\n</think>\n\\boxed{{L}}",
        "So {W} can be excluded and the answer is {L}.\n</think>\n\n{L}. {T}",
        ("invalid", "<think>\nFirst consider {L}. It fits part of the picture, but what about {W}? Hmm, {W} fits"),
        ("invalid", "<think>\nThe key finding suggests {W}. But I should also consider"),
    ]),
    "lang-es.2": _F("choice", "held-out", [
        "Mi respuesta final: {L}", "Elijo la opción {L}.",
        "La opción {W} no es correcta. La respuesta correcta es la opción {L}.",
    ]),
    "lang-pt.2": _F("choice", "held-out", [
        "Escolho a alternativa {L}.", "Alternativa correta: {L}",
        "A alternativa {W} não se aplica aqui. Resposta: {L}",
    ]),
    "lang-fr.2": _F("choice", "held-out", [
        "Je choisis {L}.", "Réponse finale : ({L})",
        "L'option {W} ne convient pas. La bonne réponse est l'option {L}.",
    ]),
    "lang-de.2": _F("choice", "held-out", [
        "Die beste Antwort ist {L}.", "Lösung: {L}",
        "{W} passt nicht zum Befund. Richtige Antwort: {L}",
    ]),
    "lang-zh.2": _F("choice", "held-out", [
        "最终答案：{L}", "我选{L}。", "{W}不符合病情，正确选项是{L}。",
    ]),
    "lang-ja.2": _F("choice", "held-out", [
        "答えは{L}です。", "最終的な答え: {L}", "{W}は当てはまりません。正しい選択肢は{L}です。",
    ]),
    "truncated.2": _F("choice", "held-out", [
        ("invalid", "Looking at option {L}, {T}, we see that it is"),
        ("invalid", "The options include {W} and {L}. {L} is often recommended, but in this case the"),
        ("invalid", "{W}. {WT} - first-line for most patients, however"),
        ("invalid", "Considering the vital signs, the most appropriate choice would be"),
        "Final answer: {L}.\n\nNow, to explain why {W} is wrong: the patient",
        "The answer is ({L}) {T}. Let me explain each of the other options. {W}:",
        "**Answer:** {L}\n\n**Why not {X}?** Because the",
    ], finish="length"),
    "refusal.2": _F("choice", "held-out", [
        "I can't provide medical advice. Please talk to a doctor.",
        "Sorry, I am unable to answer questions that involve patient care.",
        "There is not enough information to choose one option.",
        "None of the options is correct, in my view.",
        "I'd rather not guess on this one.",
    ], kind="invalid"),
    "conflict.2": _F("choice", "held-out", [
        "Answer: {L}\n\nSo the final answer is {W}.",
        "The best answer is {L}.\n\nIn summary, the correct choice is {W}.",
        "Final answer: ({L})\n...\nFinal answer: ({W})",
        "\\boxed{{L}}\n\\boxed{{W}}",
        "Therefore, the answer is {L}.\n\n**Answer: {W}**",
        "<final_answer>{L}</final_answer>\n\nThe correct answer is {W}.",
    ], kind="ambiguous"),
    "rejection-only.2": _F("choice", "held-out", [
        "{L} is wrong.",
        "Option {L} can be excluded.",
        "I would not choose {L}.",
        "{L} - incorrect, this does not fit.",
        "Definitely not {L} or {W}.",
        "We can rule out {L}.",
    ], kind="invalid"),
    "hedge.2": _F("choice", "held-out", [
        "Either {L} or {W} would be acceptable.",
        "{L}/{W}",
        "Possibly {L}, possibly {W}.",
        "I can't decide between {L} and {W}.",
        "The answer is {L} or {W}, depending on the patient's age.",
    ], kind="ambiguous"),
    "letter-options.2": _F("choice", "held-out", [
        ("invalid", "Choose a management plan after reviewing the image."),
        ("invalid", "A biopsy would be the most informative next step."),
        ("invalid", "Without the figure, I can only say a lesion is present."),
        ("invalid", "The image is not available to me, so I cannot pick a label."),
        "The correct answer is {L}.",
        "Final answer: ({L})",
        "Answer: {L}",
    ], pool="letters"),
    "option-text-symbols.2": _F("choice", "held-out", [
        "Final answer: {T}", "{T} ({L})", "I'd go with {T}.", "The correct option is: {T}",
        "**Answer:** {T}",
    ], pool="symbols"),
    "yn-reasoning.2": _F("label", "held-out", [
        "The randomised trial shows a clear difference between arms, with a narrow confidence interval.\n"
        "Final decision: {y}",
        "Taking the limitations into account, I'd answer {y}.",
        "Answer: {Y}. The authors' conclusion follows from the primary analysis.",
        "Evidence summary: consistent effect across subgroups. Therefore: {y}.",
    ], pool="pubmedqa"),
    "yn-self-correct.2": _F("label", "held-out", [
        "{Z}. Hmm, wait - looking at the secondary endpoints, {y}.",
        "My answer was {z}; on second thought, it's {y}.",
        "{Z}? Actually, {y}.",
        "At first glance {z}, but the final answer is {y}.",
    ], pool="pubmedqa"),
    "yn-undetermined.2": _F("label", "held-out", [
        "It cannot be determined from the abstract whether the answer is {y}.",
        "There is not enough information to answer yes or no.",
        "Undetermined.",
        "The abstract does not allow a conclusion either way.",
        "Cannot be determined from the data provided.",
        "Cannot say.",
    ], kind="invalid", pool="pubmedqa"),
    "yn-json-xml.2": _F("label", "held-out", [
        '{"Answer": "{y}"}', '{"decision": "{y}", "confidence": "moderate"}', "<decision>{y}</decision>",
        "<final>{y}</final>",
    ], pool="pubmedqa"),
    "yn-truncated.2": _F("label", "held-out", [
        "Final answer: {y}.\n\nExplanation: the study enrolled",
        ("invalid", "Based on the data, the answer is likely to be"),
        ("invalid", "The primary outcome improved, which points to {y}, but the secondary outcome"),
    ], finish="length", pool="pubmedqa"),
    "yn-hedge.2": _F("label", "held-out", [
        "{Y} or {z} - the evidence does not settle it.",
        "Either {y} or {z}.",
    ], kind="ambiguous", pool="pubmedqa"),
    "yn-lang.2": _F("label", "held-out", [
        "Respuesta final: {y}", "Réponse finale : {y}", "Endgültige Antwort: {y}", "最终答案：{y}",
        "Resposta final: {y}", "最終回答：{y}",
    ], pool="pubmedqa"),
}
