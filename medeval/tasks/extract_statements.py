"""Answer statements: where a text states an answer, and how several statements make one outcome.

The readers (medeval/tasks/extract_choice.py for options, medeval/tasks/extract.py for labels) find every
answer statement of an output with its position and its tier: 1 a final-answer statement (`\\boxed{}`,
`Answer: B`, `<final_answer>`, `{"choice": "B"}`, a verdict column, `La respuesta es B`), 2 a
weaker one (`I'd go with B`, `So, B.`, `B is correct`, `That leaves B`), 3 a fallback position (the
start of the output, a last line, a bold letter, an option's text). `decide` turns them into one
outcome: the strongest tier that has statements decides; a statement after a revision marker
(`wait`, `actually`, `on reflection`) replaces those before it; one distinct answer is the answer,
several are ambiguous (never the boxed or the last one silently). Rules: docs/extraction.md.
"""
from __future__ import annotations

import re
from typing import NamedTuple

from .extract import Outcome

FINAL, WEAK, FALLBACK = 1, 2, 3


class Statement(NamedTuple):
    pos: int                 # where in the (cleaned) text it is stated
    answers: frozenset       # what it names: one answer, or two or more (a hedge: "B or C")
    tier: int                # FINAL, WEAK or FALLBACK
    rule: str                # which rule found it (recorded as Outcome.rule)


# A later statement that follows one of these replaces the earlier ones ("Answer: A ... wait, no. Final answer: C").
REVISION = re.compile(
    # a lone "wait", "actually", "hmm" revises only as an interjection ("Actually, B", "wait - no", "actually no"),
    # not as a word of a sentence ("Wait times are long", "the INR is actually high")
    r"\b(?:(?:wait|actually|hmm+)(?=\s*(?:[,.:;!?…—–-]|\.\.\.|no\b|$))|on\s+(?:second\s+thought|reflection|reconsideration|further\s+reflection)|"
    r"correction|scratch\s+that|I\s+(?:was\s+wrong|made\s+a\s+mistake|change\s+my\s+(?:answer|mind))|"
    r"let\s+me\s+(?:reconsider|correct|re-?check|re-?evaluate)|re-?considering|(?:upon|after|on)\s+(?:further\s+)?"
    r"(?:review|re-?checking|reconsideration)|revised|changing\s+my\s+answer|(?:revise|change)\s+(?:it|that|my\s+answer)\s+to|no,\s+that'?s\s+(?:wrong|not\s+right)|"
    r"(?:after|upon|on)\s+(?:reviewing|considering|re-?reading|looking\s+(?:again|closer|more\s+closely))[^,.;\n]{0,60},|"
    r"en\s+realidad|na\s+verdade|en\s+fait|eigentlich|其实|实际上|訂正|いや)\b", re.I)

# A verdict that rejects what it follows ("C is incorrect", "B: wrong", "A ❌"): not an answer statement.
REJECTED = re.compile(
    r"^[ \t*_)\].:,-]*(?:[-–—:][ \t]*)?(?:(?:is|was|are|would\s+be|seems|appears|looks)\s+(?:also\s+|clearly\s+|definitely\s+)?"
    r"(?:not\b|incorrect|wrong|false|unlikely|less\s+likely|least\s+likely|inappropriate|contraindicated|"
    r"a\s+(?:distractor|trap)|ruled\s+out|excluded|eliminated|a\s+poor)|(?:incorrect|wrong|false|ruled\s+out|"
    r"excluded|eliminated|unlikely|not\s+(?:correct|right|the\s+answer|it))|[❌✗✘✖×⛔🚫]"
    r"|(?:ist|est|es|é|está|è)\s+(?:falsch|nicht|inkorrekt|incorrect[ea]?|incorrecta|errad[ao]|equivocad[ao]|faux|"
    r"fausse|sbagliat[ao]|no\s+es)|[はがも]?(?:誤り|不正解|間違い|错误|錯誤|不正确|不正確|不对|不對|排除))", re.I)

# Final-answer markers beyond "answer": JSON and XML keys, verdicts, summaries, and the answer phrases
# of Spanish, Portuguese, French, German, Italian, Chinese and Japanese. The answer follows the match.
MARKERS = re.compile(
    r"[\"'](?![\w\s-]*(?:reject|incorrect|wrong|other|alternative|second|runner|distractor|exclud|reason|explan|rationale|confiden|think|analysis|discard))[\w\s-]{0,30}(?:answer|choice|option|final|select|pred|letter|correct|verdict|decision|result|response|label|pick)[\w\s-]{0,30}[\"']\s*:\s*"   # JSON keys
    r"|<(?![\w-]*(?:reject|incorrect|wrong|other|alternative|second|runner|distractor|exclud|reason|explan|rationale|confiden|think|analysis|discard))[\w-]{0,30}(?:answer|choice|option|final|select|pred|letter|correct|verdict|decision|result|response|label|pick)[\w-]{0,30}>"                         # XML tags
    r"|\b(?:richtig\s+ist|正しいのは|故选|答案选|应该选|應該選|所以选)\s*"
    r"|\b(?:final\s+)?(?:verdict|tl;?\s*dr|bottom\s+line|(?:in\s+)?summary|conclusion|final\s+(?:pick|selection|call))"
    r"\s*[*_]*\s*(?:[:=—–-]|\bis\b)"
    r"|\b(?:key|pick|final|most\s+appropriate|correct\s+response(?:\s+here)?)\s*[*_]*\s*:"
    r"|\b(?:ranking|best|top(?:\s+(?:answer|pick|choice))?|primary(?:\s+answer)?|most\s+likely|first\s+(?:choice|pick))"
    r"\s*[*_]*\s*(?::|\bis\b|(?=\s+[(*\[]*[A-Z](?![\w’])))"
    r"|\b(?:(?:la\s+)?respuesta(?:\s+(?:correcta|final|final\s+correcta))?|(?:la\s+)?opci[oó]n\s+correcta"
    r"|(?:a\s+)?resposta(?:\s+(?:correta|certa|final))?|(?:a\s+)?(?:alternativa|op[cç][aã]o)\s+(?:correta|certa)"
    r"|(?:la\s+)?(?:bonne\s+)?r[ée]ponse(?:\s+(?:correcte|finale|juste))?"
    r"|(?:die\s+)?(?:richtige\s+|korrekte\s+|endg[uü]ltige\s+)?(?:antwort|l[oö]sung)"
    r"|(?:la\s+)?risposta(?:\s+(?:corretta|finale))?)"
    r"\s*[*_]*\s*(?:[:=]|\b(?:es|é|est|ist|è|seria|sería|serait|w[aä]re|lautet)\b"
    r"(?:\s+(?:donc|also|daher|somit|entonces|portanto|logo|quindi|dunque|clairement|claramente))?\s*:?)"
    r"|\b(?:ist|lautet)\s+(?:die\s+)?(?:richtige\s+|korrekte\s+)?(?:antwort|l[oö]sung)\b\s*:?"
    r"|(?:最终|最終|正确|正確|正解の)?(?:答案|答え|回答|解答|正解|选项|選択肢)(?:是|为|為|は|：|:|应该是|應該是)\s*"
    r"|(?:我选|我選|选择|選擇|应选|應選)\s*", re.I)

# "Antwort B ist richtig", "La B es correcta", "L'option B est la bonne réponse" (a weak statement)
FOREIGN_VERDICT = re.compile(
    r"(?:^|(?<=[\s.:;(]))(?:(?:option|opci[oó]n|op[cç][aã]o|alternativa|antwort|r[ée]ponse|respuesta|resposta|la|a|l')\s*)?"
    r"\(?([A-Z])\)?\s+(?:ist|est|es|é|è|está)\s+(?:die\s+|la\s+|a\s+|le\s+)?(?:richtig|korrekt|correct[ae]?|correcta|"
    r"corret[ao]|certa|juste|bonne\s+r[ée]ponse|richtige\s+antwort|respuesta\s+correcta|resposta\s+correta)\b(?!\s+(?:si|se|wenn|quand|cuando)\b)"
    r"|(?<![A-Za-z])([A-Z])\s*(?:是正确的|是正確的|正确|正確|是对的|是對的|が正解|が正しい|が最も適切|が適切)", re.I)

# "Is it B? No." (a rejection) and "Is it D? Yes." (a weak statement)
SELF_QUESTION = re.compile(
    r"(?:^|(?<=[.!?;:\n]))[\s*_-]*(?:(?:is\s+it|could\s+it\s+be|(?:is|could|might)\s+the\s+(?:correct\s+|right\s+|best\s+)?answer(?:\s+be)?|"
    r"what\s+about|how\s+about|is|should\s+(?:we|I)\s+(?:pick|choose|"
    r"select|go\s+with)|do\s+(?:we|I)\s+(?:pick|choose))\s+)?(?:option\s+)?([^?\n]{1,300}?)"
    r"(?:\s+(?:the\s+)?(?:right|correct|best|answer)(?:\s+(?:choice|answer|option|one))?)?\s*\?[\s*_]*"
    r"(yes|right|correct|yep|indeed|definitely|no|nope|wrong|incorrect|unlikely|not\s+(?:here|really|quite|this\s+time|it))"
    r"\b", re.I)

# "I'm torn between B and C": a hedge (read as two answers)
TORN = re.compile(r"\b(?:torn|undecided|hesitating|wavering)\s+between\b|(?:^|(?<=[.!?\n]))\s*between\b", re.I)
# a statement inside a condition or an alternative ("if that were not available I would choose A")
CONDITION = re.compile(r"\b(?:if|unless|whether|in\s+case)\b[^,;.!?\n]*$|"
                       r"\b(?:otherwise|alternatively|failing\s+that|as\s+a\s+(?:backup|fallback)|if\s+not)\b[^.;!?\n]*$",
                       re.I)

# "That leaves A", "we are left with C", "which leaves B": the end of an elimination
LEAVES = re.compile(r"\b(?:(?:that|this|which|it)\s+leaves(?:\s+us\s+with)?|the\s+(?:only\s+)?remaining\s+"
                    r"(?:choice|option|answer)(?:\s+is)?[,:]?|(?:we\s+are|I'm|I\s+am)\s+left\s+with|"
                    r"leaving(?:\s+us\s+with)?|the\s+(?:only\s+)?(?:one|option)\s+(?:left|remaining)\s+is)\s*:?", re.I)

# Check marks and verdict cells
POSITIVE_MARK = re.compile(r"^[\s*_]*(?:✅|✔️?|☑️?|✓|🟢|(?:the\s+)?(?:correct|right|true|best|yes|answer|"
                           r"selected|chosen|most\s+likely|best\s+answer|correct\s+answer)\b)", re.I)
NEGATIVE_MARK = re.compile(r"^[\s*_]*(?:❌|✗|✘|✖️?|×|⛔|🔴|incorrect|wrong|false|no\b|not\b|"
                           r"unlikely|less\s+likely|ruled\s+out|excluded)", re.I)
_VERDICT_LINE = re.compile(r"^[\s*_>#-]*((?:option\s+|choice\s+)?[(\[]?[A-Z]\b[^\n]{0,200}?)[*_]*\s*(?::|\s[-–—]|[–—])\s*[*_]*"
                           r"(correct|incorrect|wrong|right|best\s+answer)[\s*_.!]*(?:$|[-–—:(,])", re.I)
_CHECKS = re.compile(r"(✅|✔️?|☑️?|✓|❌|✗|✘|✖️?|^\s*[-*]?\s*\[[xX✓✔]\]|^\s*[-*]?\s*\[ \])")


def check_marks(t: str) -> list[tuple[int, str, bool]]:
    """(position, the line's text without its marks, positive?) of every line with a check mark, and of
    every row of a markdown table with a verdict column (its other cells, one per line). The caller
    reads which option the text names."""
    out = []
    lines, pos = t.split("\n"), 0
    header: list[str] | None = None
    for line in lines:
        start, pos = pos, pos + len(line) + 1
        s = line.strip()
        if s.startswith("|") and s.count("|") >= 2:
            cells = [c.strip() for c in s.strip("|").split("|")]
            if all(re.fullmatch(r":?-{2,}:?|", c) for c in cells):
                continue
            if header is None:
                header = cells
                continue
            vcol = next((i for word in ("verdict", "correct", "best", "✅", "answer", "status", "result", "judg",
                                        "assessment", "evaluation", "fit")
                         for i, h in enumerate(header) if word in h.lower()), None)
            verdict = cells[vcol] if vcol is not None and vcol < len(cells) else cells[-1]
            key = "\n".join(c for i, c in enumerate(cells) if i != vcol) if vcol is not None else cells[0]
            if NEGATIVE_MARK.search(verdict):
                out.append((start, key, False))
            elif POSITIVE_MARK.search(verdict):
                out.append((start, key, True))
            elif vcol is not None and re.search(r"answer|choice|selected|final|pick", header[vcol], re.I):
                out.append((start, verdict, True))   # | Answer | / | B |: the cell is the answer
            continue
        header = None
        said = _VERDICT_LINE.match(line)   # "Option B: Correct - matches", "**D. text** – Incorrect."
        if said:
            out.append((start, said.group(1), said.group(2).lower() not in ("incorrect", "wrong")))
            continue
        marks = _CHECKS.findall(line)
        if not marks:
            continue
        positive = {m.strip(" -*")[0] in "✅✔☑✓" or m.strip(" -*")[:2] in ("[x", "[X", "[✓", "[✔") for m in marks}
        if len(positive) == 1:
            out.append((start, _CHECKS.sub(" ", line).strip(" -*•\t"), positive.pop()))
    return out


def latest(t: str, stmts: list[Statement]) -> list[Statement]:
    """The statements from the last revision on: a statement preceded by a revision marker
    (between it and the statement before it) replaces every earlier one."""
    stmts = sorted(stmts)
    keep_from = 0
    for i in range(1, len(stmts)):
        if REVISION.search(t[stmts[i - 1].pos:stmts[i].pos]):
            keep_from = i
    return stmts[keep_from:]


def decide(t: str, stmts: list[Statement], allowed: list) -> Outcome | None:
    """The outcome of the strongest tier that has statements, or None if there are none."""
    stmts = latest(t, stmts)   # a revision replaces every earlier statement, whatever its tier
    for tier in (FINAL, WEAK, FALLBACK):
        group = latest(t, [s for s in stmts if s.tier == tier])
        if not group:
            continue
        rule = group[-1].rule
        named = frozenset().union(*(s.answers for s in group))
        if len(named) > 1:
            return Outcome(None, "ambiguous", rule if len(group) == 1 else f"{rule}:conflict")
        x = next(iter(named))
        if tier == FINAL and any(s.tier == WEAK and s.answers - named for s in stmts):
            return Outcome(None, "ambiguous", "final-vs-weak")   # "I'd go with B. ... Final answer: C"
        return Outcome(x, "answer", rule) if x in allowed else Outcome(None, "invalid", rule + ":out-of-range")
    return None
