"""Multiple-choice extraction: raw text -> one option letter, invalid, or ambiguous.

Built so that a wrong reading needs a wrong rule, not a missing one: every answer statement is found
with its position and strength (`statements`), and medeval/tasks/extract_statements.py decides: one distinct
final answer is the answer, several are ambiguous, none is invalid. Option text is matched as a whole
option, keeping the signs, symbols and case that tell two options apart; a letter counts only as a
standalone token in an answer position; rejected, conditional and ranked options are not statements.
Rules and precedence: docs/extraction.md.
"""
from __future__ import annotations

import re

from ..accounting import TRUNCATED
from .extract import INVALID, Outcome, boxed_spans, clean, norm
from .extract_statements import (CONDITION, FINAL, FOREIGN_VERDICT, LEAVES, MARKERS, REJECTED, REVISION, SELF_QUESTION, TORN, WEAK,
                                 Statement, check_marks, decide)

# Words that may follow a bare letter in an answer position ("B because ...", "C is correct").
CONNECTIVES = {"is", "was", "would", "should", "seems", "appears", "because", "since", "as", "given", "due",
               "which", "being", "here", "fits", "best", "looks", "remains", "must", "will", "might", "has", "are", "it",
               "could", "may", "seem", "seems", "rather"}
PRONOUN_SAFE = {"is", "are", "it", "because", "fits", "best", "here", "remains"}   # "I would ..." is the pronoun
_DECOR = " \t\r\n*_#<>`\"'“”‘’[](){}:=-–—~→⇒"
_FILLER = re.compile(r"^(?:(?:the\s+)?(?:option|choice|letter|answer)\b|either\b|both\b|only\b|definitely\b|"
                     r"(?-i:a\s+letra|la\s+letra|la\s+lettre|der\s+[Bb]uchstabe|[Ll]etra|[Ll]ettre|[Aa]lternativa|"
                     r"[Oo]pci[oó]n|[Oo]p[cç][aã]o|la\s+opci[oó]n|la|el|le|die|a|l'|la\s+opci[oó]n|a\s+op[cç][aã]o|a\s+alternativa|l'option|die\s+option|"
                     r"opci[oó]n|op[cç][aã]o|alternativa)(?=[ \t]+[(*\[]*[A-Z](?![\w’]))|"
                     r"probably\b|clearly\b|certainly\b|likely\b|most\s+likely\b|surely\b)\s*[:#,]?\s*", re.I)
_CJK = "\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af"
_LETTER = re.compile(rf"([A-Za-z])(?![^\W{_CJK}]|’)(?!'\w)(?!-\w)(?!\.\w)")
_JOIN = re.compile(r"\s*[)\].*_]*\s*(?:,\s*(?:or\s+|and/or\s+)?|/|\bor\b|\band/or\b|\band\b|&|\bvs\.?|\(\s*or\b)\s*"
                   r"(?:possibly\s+|perhaps\s+|maybe\s+|probably\s+)?(?:option\s+|choice\s+)?[(*\[]*", re.I)


def _exact(s: str) -> str:
    """Whitespace collapsed, case, signs and symbols kept: what tells "-1000" from "1000", "<20%" from ">20%"."""
    return " ".join(s.replace("−", "-").split())


def _clashes(o: dict, options: list[dict]) -> bool:
    """Another option of the item reads the same once case and symbols are dropped ("Bb BB" / "bb bb")."""
    return any(p is not o and norm(p["text"]) == norm(o["text"]) for p in options)


def _text_hit(s: str, options: list[dict]) -> dict | None:
    """The option whose whole text starts `s` (the longest such option). Where two options read the same
    without case and symbols, or an option is a single letter, only the exact text counts."""
    s = s.replace("−", "-")
    ns, es = f" {norm(s)} ", _exact(s)
    hits = []
    for o in options:
        no, eo = norm(o["text"]), _exact(o["text"])
        if not eo:
            continue
        if _clashes(o, options) or not no or len(no) == 1 and no.isalpha():
            follow = es[len(eo):]
            if es.startswith(eo) and not re.match(r"[.,]\d|" + (r"[\w%]" if len(no) != 1 else r"\s*\w"), follow):
                hits.append(o)
        elif ns.startswith(f" {no} ") and re.match(r"\s*([-+−<>≤≥±]?)", s).group(1).replace("−", "-") \
                == (eo[0] if eo[0] in "-+<>≤≥±" else "") and \
                not re.match(r"(?:[.,]\d|\d|%)", s[_text_end(s, o["text"]):]):   # "2.5" is not the option "2"
            hits.append(o)
    return max(hits, key=lambda o: len(_exact(o["text"]))) if hits else None


def _after_letter(rest: str) -> str:
    """What follows "B." / "B)" / "B -": the separator removed, a minus sign kept ("D. -5 mg/kg")."""
    return re.sub(r"^[ \t.):*_\]–—]*(?:-(?![\d.]))?[ \t]*", "", rest)


def _own_text_follows(rest: str, letter: str, options: list[dict]) -> bool:
    own = next((o for o in options if o["letter"] == letter), None)
    if own and _clashes(own, options):   # "D. Bb Bb" where D is "Bb bb" and C is "Bb Bb": not D's own text
        es, eo = _exact(_after_letter(rest)), _exact(own["text"])
        return es.startswith(eo) and not re.match(r"[\w%]", es[len(eo):len(eo) + 1])
    return bool(own and norm(own["text"]) and f" {norm(rest)} ".startswith(f" {norm(own['text'])} "))


# At the start of an output a letter followed by a verb is an answer only with a verdict: "B is correct", "B would
# be the best answer", not "B is the usual choice for outpatients", "C would be correct if ...", "B might be".
_VERBS = {"is", "was", "would", "should", "seems", "appears", "looks", "remains", "must", "will", "might", "has", "are",
          "could", "may", "seem", "fits"}
_VERDICT = re.compile(
    r"\s+fits\s+(?:best|(?:all|every)\b|the\s+(?:picture|presentation|findings|vignette)\s+best)|"
    r"\s+(?:is|was|would\s+be|should\s+be|seems\s+to\s+be|seems|appears\s+to\s+be|appears|looks|remains|must\s+be|"
    r"will\s+be|has\s+to\s+be|are)\s+(?:also\s+)?(?:the\s+|my\s+|our\s+)?(?:most\s+|best\s+|only\s+|single\s+|final\s+|"
    r"clearly\s+|definitely\s+|certainly\s+)?(?:correct|right|best|answer|true|appropriate|likely|accurate|indicated|"
    r"preferred|optimal|choice|option|response|pick|selection)\b"
    r"(?!\s+(?:if|when|unless|only|than|had|were|in\s+(?!this\b)|for\s+(?!this\b)|among\s+(?!these\b))\b)", re.I)


_AS_ANSWER = re.compile(r"\s+as\s+(?:the|my|our)\s+(?:only\s+|best\s+|final\s+|correct\s+|right\s+)*(?:answer|choice|option)\b",
                        re.I)
_TEXT_GO = re.compile(r"\s+(?:because|since|as|given|due\s+to|which\s+(?:is|fits|explains)|fits\s+best|best\s+"
                      r"(?:explains|fits|describes|accounts)|(?:should|must|needs\s+to)\s+be\s+(?:given|started|done|"
                      r"performed|used|chosen|ordered)(?:\s+(?:first|now|next|immediately))?\s*(?:[.!\n]|$))\b", re.I)


def _letter(s: str, options: list[dict], strict: bool = False, lower: bool = False, start: bool = False):
    """(letter, rest) when `s` starts with a standalone option letter, else None.
    A letter followed by a word counts only when the word is a connective or the letter's own
    option text ("B because", "B Heparin"), so "A chest X-ray" is never the letter A."""
    m = _LETTER.match(s)
    if not m:
        return None
    letter, rest = m.group(1), s[m.end():]
    if re.match(r"[)\]*_]*\s*\?", rest):
        return None   # "Option D?" asks
    if REJECTED.match(rest) and not _text_hit(_after_letter(rest), options):
        return None   # "C is incorrect", "B: wrong", "A ❌": a rejected option, not an answer ("B. False" is B)
    if letter.islower():   # "answer: (b)", "answer: b." -- only after an answer phrase, never before words
        if not lower:
            return None
        return (letter.upper(), rest) if re.match(r"\s*\)|[\s.*_\]]*(?:\n|$)", rest) else None
    if re.match(rf"\s*(?:$|\n|[^\w\s]|[{_CJK}])", rest):
        return letter, rest
    word = re.match(r"\s+([A-Za-z]+)", rest)
    if _own_text_follows(rest, letter, options):
        return letter, rest
    if word and strict and letter != "I" and _AS_ANSWER.match(rest):
        return letter, rest   # "That leaves C as the answer"
    if word and not strict and word.group(1).lower() in (CONNECTIVES if letter != "I" else PRONOUN_SAFE):
        if start and word.group(1).lower() in _VERBS and not _VERDICT.match(rest):
            return None
        return letter, rest
    if word and word.group(1).lower() in ("or", "and") and _JOIN.match(rest) and \
            _letter(rest[_JOIN.match(rest).end():], options):
        return letter, rest
    return None


def read_span(span: str, options: list[dict], strict: bool = False, lower: bool = False, start: bool = False) -> set[str]:
    """Every answer the start of `span` names: {} none, {X} one, two or more = a hedge."""
    s = span.lstrip(" \t\r\n*_:\"'“”‘’`")
    hit = _text_hit(s, options)       # "-1000", ">20%", "(a) and (b)": the option's own text, signs included
    if not hit or _letter(s.lstrip(_DECOR), options, strict, lower, start):
        s = span.lstrip(_DECOR)
        hit = _text_hit(s, options)   # "Both A and B" may itself be an option's text
    if not hit:
        for _ in range(2):
            s = _FILLER.sub("", s).lstrip(_DECOR)
        hit = _text_hit(s, options)
    if not s:
        return set()
    found: set[str] = set()
    lt = _letter(s, options, strict, lower, start)
    if lt and hit and norm(hit["text"]).startswith(norm(lt[0]) + " ") and not _own_text_follows(lt[1], lt[0], options):
        lt = None          # the letter is the first word of an option's text ("A chest X-ray ...")
    if lt:
        letter, rest = lt
        found.add(letter)
        after = _after_letter(rest)
        other = _text_hit(after, options)
        if other and other["letter"] != letter and not _own_text_follows(after, letter, options):
            found.add(other["letter"])   # "B. Warfarin" where Warfarin is option D
        rest_after = rest
    elif hit:
        rest_after = s[_match_len(s, hit["text"]):]
        if REJECTED.match(rest_after):
            return set()   # "Heparin is contraindicated here"
        if start and re.match(r"\s+[A-Za-z]", rest_after) and not (_VERDICT.match(rest_after) or _TEXT_GO.match(rest_after)):
            return set()   # "Heparin is often used, but ...", "Observation alone is not enough": a discussion
        found.add(hit["letter"])
    else:
        return set()
    j = _JOIN.match(rest_after)
    if j:
        tail = rest_after[j.end():]
        nxt = _letter(tail, options)
        other = _text_hit(tail, options)
        if nxt and not (other and norm(other["text"]).startswith(norm(nxt[0]) + " ")):
            found.add(nxt[0])
        elif other:
            found.add(other["letter"])
    return found


def _text_end(s: str, text: str) -> int:
    """Where the option text that starts `s` ends in `s` (its own symbols included: "20%")."""
    return len(text) if s[:len(text)].lower() == text.lower() else _match_len(s, text)


def _match_len(s: str, text: str) -> int:
    """Characters of `s` covered by the option text (same words, any punctuation)."""
    words = norm(text).split()
    m = re.match(r"\W*" + r"\W+".join(re.escape(w) for w in words), s, re.I)
    return m.end() if m else len(text)


# Answer positions ----------------------------------------------------------------
_PREFIX = re.compile(
    r"(?:\b(?:(?:final|correct|right|best|true|most[ \t]+(?:likely|appropriate|accurate|correct))[ \t]+)?"
    r"answer(?:\s+(?:choice|option|letter))?(?:\s+(?:to|for)\s+(?:this|the)\s+(?:question|item|problem))?(?:\s+here)?"
    r"|\b(?:correct|right|best|final|appropriate|most\s+likely|most\s+appropriate|my)\s+(?:option|choice|letter|response|selection|pick)(?:\s+here)?"
    r"|\b(?:option|choice|selection|response|solution|correct|letter|selected|result|ans)(?=\s*\**\s*[:=])"
    r"|\bans\.(?=\s)|(?m:^)[*_\s]*A\s*:(?=\s*[*(\[]*[A-Z](?![\w'’])))"
    r"(?:\s*\([^()\n]{0,80}\))?\s*[*_]*\s*"
    r"[\"']?(?:[:=|>→⇒]|=>|[-–—]+>?|\b(?:is|would\s+be|will\s+be|should\s+be|must\s+be|seems\s+to\s+be|appears\s+to\s+be|remains)\b\s*:?|(?=\s*\n)|(?=\s+\S))"
    r"|\bI\s*(?:would|will|'d|’d|'ll|’ll|am\s+going\s+to|must)?\s*(?:choose|pick|select|go\s+with|opt\s+for|answer|say)\b\s*:?"
    r"|\b(?:go|going)\s+with\b"
    r"|\b(?:elijo|escojo|me\s+quedo\s+con|escolho|fico\s+com|je\s+choisis|je\s+r[ée]ponds|je\s+prends|"
    r"ich\s+w[äa]hle|ich\s+nehme|ich\s+antworte)\b"
    r"|\b(?:let'?s|let\s+us|we(?:\s+(?:would|will|should|can|must))?)\s+(?:choose|pick|select|go\s+with|opt\s+for)\b"
    r"|(?:^|(?<=[.!?\n]))\s*(?:choose|pick|select)\b"
    r"|\b(?:it|this|that)\s*(?:is|'s|’s|could\s+be|might\s+be|may\s+be|would\s+be|must\s+be|should\s+be)\b"
    r"|\b(?:my|the)\s+(?:top\s+|first\s+|final\s+|best\s+)?(?:pick|selection|choice)\s+(?:is|would\s+be)\b", re.I)
_CONCLUDE = re.compile(r"(?:^|[\n.!;]\s*|\s[-–—]\s*)[*_]*(?:therefore|thus|hence|so|consequently|overall|in\s+conclusion)\b[,:]?\s*"
                       r"|\b(?:all\s+things\s+considered|putting\s+it\s+(?:all\s+)?together|all\s+in\s+all|in\s+the\s+end|"
                       r"ultimately|to\s+conclude|in\s+short|to\s+sum\s+up|considering\s+everything)\b[,:]?\s*", re.I)
_SUFFIX = re.compile(
    r"(?:^|(?<=[\n.;:!?,(\[*])|(?<=\s))(?:(?:option|choice|letter|answer)\s+)?[(*\[]*([A-Z])[)*\]]*"
    r"(?:\s*\([^()\n]{1,200}\))?\s+"   # "B (its text) is the best answer"
    r"(?:is|would\s+be|seems\s+to\s+be|appears\s+to\s+be|should\s+be|must\s+be|emerges\s+as|stands\s+out\s+as)\s+"
    r"(?:the\s+|my\s+)?"
    r"(?>(?:most\s+|only\s+|single\s+|best\s+|final\s+)?(?:correct|right|best|true|accurate|appropriate|likely|answer)\b"
    r"(?:\s+(?:answer|choice|option|one)\b)?)"   # atomic: "the most likely answer only when" is not "most likely"
    r"(?!\s+(?:than|if|when|only|unless|in\s+(?:a|an|the|patients?|cases?|children|pregnan\w*|outpatients?)|"
    r"for\s+(?:a|an|patients?|children|outpatients?)|had|were)\b)",
    re.I)
# "C would be correct in children", "D is the answer most people choose": a verdict counts where it ends its clause
_WOULD_END = re.compile(r"\s*(?:answer|choice|option|one)?\s*(?:here|for\s+this\s+(?:patient|question|case|item)|"
                        r"in\s+this\s+(?:case|patient|scenario|question))?\s*[*_)]*\s*"
                        r"(?:[.!;\n]|$|,?\s*(?:because|since|as|given|so)\b|[,:]\s*(?:\(?[A-Z]\)?|not\b)|\()", re.I)
_SUFFIX_PRE_OK = re.compile(r"(?:^|[\n.;:!?,(\[*]|\b(?:option|choice|letter|answer|so|thus|therefore|hence|think|"
                            r"believe|guess|that|clearly|definitely|probably)\s*)\s*$", re.I)


# "The most likely diagnosis is B." -- read strictly: only a delimited letter or its own text
_TOPIC_IS = re.compile(r"\b(?:diagnosis|step|management|treatment|cause|drug|organism|vessel|artery|test|medication|"
                       r"therapy|intervention|finding|mechanism|explanation|culprit|agent|investigation|option|choice)"
                       r"(?:\s+(?:here|for\s+[^.\n]{0,60}?|in\s+[^.\n]{0,60}?))?\s+(?:is|would\s+be|will\s+be)\b:?", re.I)
_NEGATED_PHRASE = re.compile(r"\b(?:incorrect|wrong|false|not\s+the|isn't\s+the|other|distractor|tempting|"
                             r"alternative|common(?:\s+wrong)?|tricky|second|third|runner[- ]up|less|least|"
                             r"backup|fallback|previous|earlier|initial|original|usual|\d+(?:nd|rd|th)|each|every|all|any|"
                             r"per|these|those|following|analy[sz]e|review|consider|evaluate|examine|discuss)[ \t-]+"
                             r"(?:(?:best|most\s+likely|likely|most\s+appropriate|appropriate|correct)[ \t]+)?$|"
                             r"\bnext[ \t-]+(?:best|most\s+likely|likely|most\s+appropriate)[ \t]+$", re.I)
_EXPLICIT = re.compile(r"answer|option|choice|response|selection|solution|correct|letter|\bans\b|^[*_\s]*A\s*:", re.I)


MAX_PHRASES = 200   # answer phrases read per kind (the last ones): a hostile repetition stays cheap


def _phrase_spans(t: str):
    """(tier, position, span, strict) of every answer position made by a phrase. FINAL: an explicit
    answer phrase ("answer is", "correct option:", "<final_answer>", "Respuesta:"); WEAK: verbs, verdicts
    after the letter, "so, B.", "the diagnosis is B", "that leaves B", read only when no final statement
    exists, so an explanation after the answer ("C is correct only for children") cannot override it.
    A phrase after a negation ("incorrect answer:"), a rank ("second-best answer:") or inside a condition
    ("if the answer is A, ...", "otherwise I would choose A") is not an answer position."""
    out = []
    free = lambda m: _free(t, m)
    for m in list(_PREFIX.finditer(t))[-MAX_PHRASES:]:
        if free(m):
            out.append((FINAL if _EXPLICIT.search(m.group(0)) else WEAK, m.end(), t[m.end():m.end() + 300], False))
    out += [(FINAL, m.end(), t[m.end():m.end() + 300], False) for m in list(MARKERS.finditer(t))[-MAX_PHRASES:]
            if free(m)]
    for rx in (_CONCLUDE, _TOPIC_IS, LEAVES):
        out += [(WEAK, m.end(), t[m.end():m.end() + 300], True) for m in list(rx.finditer(t))[-MAX_PHRASES:] if free(m)]
    for m in list(FOREIGN_VERDICT.finditer(t))[-MAX_PHRASES:]:
        if free(m):
            out.append((WEAK, m.start(), (m.group(1) or m.group(2)) + ".", False))
    for m in _SUFFIX.finditer(t):
        if m.group(1).isupper() and _SUFFIX_PRE_OK.search(t[max(0, m.start() - 30):m.start()]) and \
                _WOULD_END.match(t, m.end()) and free(m):   # the verdict ends its clause: not "... for children"
            out.append((WEAK, m.start(), m.group(1) + ".", False))   # the verdict regex already read the letter
    return out


def _free(t: str, m) -> bool:
    """The phrase `m` is an answer position: not negated or ranked ("incorrect answer:", "second-best:",
    "each option:", "next best answer:"), not inside a condition or about another setting."""
    before = t[max(0, m.start() - 24):m.start()]
    ranked_next = re.search(r"\bnext[ \t-]+$", before, re.I) and \
        re.match(r"[*_\s]*(?:best|most|likely|top|answer|option|choice|pick)", m.group(0), re.I)
    return not (_NEGATED_PHRASE.search(before) or ranked_next or
                CONDITION.search(t[max(0, m.start() - 150):m.start()]) or _conditional(t, m))


_SETTING = (r"(?:if|unless|when|whenever|in\s+(?:a|an)\s|in\s+(?:children|pregnan\w*|outpatients?|adults?|the\s+elderly|"
            r"infants?)|for\s+(?:a|an)\s|for\s+(?:children|outpatients?|adults?|infants?))")
_SENTENCE_SETTING = re.compile(r"(?:^|[.!?;\n])[\s*_]*" + _SETTING + r"[^.!?;\n]*$", re.I)
_AFTER_SETTING = re.compile(r"[^.!?;\n]*?\b" + _SETTING, re.I)


def _conditional(t: str, m) -> bool:
    """A phrase in a sentence about another setting: "In a child, the answer would be B.", "If the patient
    were older, the answer is B.", "The answer would be B in pregnancy." """
    if _SENTENCE_SETTING.search(t[max(0, m.start() - 200):m.start()]):
        return True
    if re.match(r"[^.!?;\n]{0,80}?(?<!even)\s(?:if|unless|provided|assuming)\s", t[m.end():m.end() + 120], re.I):
        return True   # "The answer is B if the patient is stable"
    return bool(re.search(r"\b(?:would|could|might)\b", m.group(0), re.I) and _AFTER_SETTING.match(t, m.end(), m.end() + 200))


def _alone(span: str, options: list[dict]) -> set[str]:
    """The answer a short span is nothing but ("B", "(C)", "Heparin"), up to its first full stop."""
    return _whole(re.split(r"(?<![A-Z])[.!?;\n]|\s[-–—]\s", span.strip(" \t,:;.!—–-*_"), maxsplit=1)[0], options)


def _self_questions(t: str, options: list[dict]) -> tuple[list[Statement], set[str]]:
    """ "Is it D? Yes." -> a weak statement of D; "Is it B? No." -> B is rejected."""
    out, rejected = [], set()
    for m in list(SELF_QUESTION.finditer(t))[-MAX_PHRASES:]:
        asked = m.group(1).strip()
        found = _alone(asked, options) or _alone(re.sub(r"^(?:it|we|I)\s+\S+\s+", "", asked), options)
        if not found and len(asked) <= 60:   # "Does B fit?", "Is B correct?": the one letter the question names
            lead = re.match(r"(?:does|do|is|could|would|should|can|might|will|option|choice)\s+\(?([A-Z])\)?(?![\w’])", asked,
                            re.I)
            named = ({lead.group(1)} if lead and lead.group(1).isupper() else
                     set(re.findall(r"(?<![\w’'])((?![AI])[A-Z]|[AI](?![ \t]+[a-z]))(?![\w’])", asked)))
            named &= {o["letter"] for o in options}
            found = named if len(named) == 1 else set()
        if len(found) == 1:
            if m.group(2).lower() in ("yes", "right", "correct", "yep", "indeed", "definitely"):
                out.append(Statement(m.start(), frozenset(found), WEAK, "self-question"))
            else:
                rejected |= found
    return out, rejected


def statements(t: str, options: list[dict]) -> tuple[list[Statement], set[str]]:
    """Every final and weak answer statement of the cleaned text `t`, with its position, and the
    letters it rejects by a question ("Is it B? No.")."""
    out = [Statement(pos, frozenset(found), FINAL, "boxed") for pos, span in boxed_spans(t)
           if (found := read_span(span, options, lower=True))]
    for tier, pos, span, strict in _phrase_spans(t):
        if (found := read_span(span, options, strict, lower=not strict)) and not _QUESTION.match(span):
            out.append(Statement(pos, frozenset(found), tier, "answer-phrase" if tier == FINAL else "weak-phrase"))
    for pos, key, positive in check_marks(t):                    # ✅ lines, verdict columns of a table
        found = next((f for cell in key.split("\n") if (f := _whole(cell, options))), None) if positive else None
        if found or positive and (found := read_span(key, options, strict=True)):
            out.append(Statement(pos, frozenset(found), FINAL, "check-mark"))
    for m in list(_REVISED.finditer(t))[-MAX_PHRASES:]:          # "D. Actually, B." "C - no, scratch that: B"
        if (found := _alone(t[m.end():m.end() + 300], options)):   # a correction of a final answer is final
            out.append(Statement(m.end(), frozenset(found), FINAL, "revision"))
    for m in list(TORN.finditer(t))[-MAX_PHRASES:]:               # "torn between B (...) and C (...)": a hedge
        sentence = re.split(r"[.!?](?=\s+[A-Z]|\s*$)|\n", t[m.end():m.end() + 400], maxsplit=1)[0]
        named = {x for x in re.findall(r"(?<![\w’'])([A-Z])(?![\w’])", sentence) if x in {o["letter"] for o in options}}
        if len(named) > 1:
            out.append(Statement(m.end(), frozenset(named), WEAK, "torn"))
    asked, rejected = _self_questions(t, options)
    lines = t.split("\n")   # "B\n\n...", "...\n\n**C**"; a letter the text rejects ("Is it B? No.") is not read so
    if len(lines) > 1 and not _is_option_list(t, [o["letter"] for o in options]):
        if (found := _whole(lines[0], options)) and not found & rejected:
            out.append(Statement(0, frozenset(found), FINAL, "first-line"))
        if (found := _whole(lines[-1], options)) and not found & rejected:
            out.append(Statement(len(t) - len(lines[-1]), frozenset(found), FINAL, "last-line"))
    return out + asked, rejected


_QUESTION = re.compile(r"[^.!\n?]{0,60}\?")   # "Is the answer C?" asks, it does not state
_REVISED = re.compile(REVISION.pattern + r"[\s,.:;!—–-]*(?:no[\s,.:;!—–-]+)?(?:(?:it'?s|it\s+is|make\s+(?:it|that)|to|"
                      r"the\s+answer\s+is|I'?ll\s+(?:go\s+with|say)|scratch\s+that)[\s,:]+)?", re.I)


def _is_option_list(t: str, letters: list[str]) -> bool:
    """The output echoes the options ("A. ...\\nB. ...") instead of answering."""
    starts = {m.group(1) for m in re.finditer(r"(?m)^[\s*_(\[]*([A-Z])[.):\]]", t)}
    return len(starts & set(letters)) >= 2


def _decide(found: set[str], letters: list[str], rule: str) -> Outcome:
    if len(found) > 1:
        return Outcome(None, "ambiguous", rule)
    x = found.pop()
    return Outcome(x, "answer", rule) if x in letters else Outcome(None, "invalid", rule + ":out-of-range")


def choice_outcome(text: str, options: list[dict], finish_reason: str | None = None) -> Outcome:
    """The option `text` answers. Final statements decide, then weak ones (docs/extraction.md); an output
    cut off at the token limit (`finish_reason` "length") is read only through them."""
    letters = [o["letter"] for o in options]
    t = clean(text)
    if not t:
        return INVALID
    stmts, rejected = statements(t, options)
    if (decided := decide(t, stmts, letters)) is not None:   # 1-2. final, then weak statements
        return decided
    if finish_reason == TRUNCATED or _NON_ANSWER.match(t):   # truncated mid-thought; "No idea", "Not sure"
        return Outcome(None, "invalid", "truncated" if finish_reason == TRUNCATED else None)
    listing = _is_option_list(t, letters)   # below: a letter rejected by a question ("B? No.") is not read
    if not listing and (found := read_span(t, options, start=True)) and not found & rejected:   # 3. the start
        return _decide(found, letters, "start")
    bold = {b for b in re.findall(r"\*\*\s*\(?([A-Z])\)?(?:[.:)]\s*[^*\n]{0,200})?\*\*", t)}
    if len(bold) == 1 and not _bold_rejected(t, next(iter(bold))) and not bold & rejected:   # 4. one bold letter
        return _decide(bold, letters, "bold")
    hits = _text_mentions(t, options) - rejected                  # 5. exactly one option text
    if len(hits) == 1:
        return _decide(hits, letters, "option-text")
    if len(hits) > 1 and re.search(r"\bor\b|/", t) and len(t) < 200:
        return Outcome(None, "ambiguous", "option-text")
    return INVALID


def _bold_rejected(t: str, letter: str) -> bool:
    """Every bold mention of the letter is followed by a rejection ("**C** is incorrect")."""
    ms = list(re.finditer(rf"\*\*\s*\(?{letter}\)?(?:[.:)]\s*[^*\n]{{0,200}})?\*\*", t))
    return all(REJECTED.match(t[m.end():]) for m in ms)


def extract_choice(text: str, options: list[dict]) -> str | None:
    """The option letter `text` answers, or None (invalid or ambiguous)."""
    return choice_outcome(text, options).answer


_NON_ANSWER = re.compile(r"[\W_]*(?:no\s+(?:idea|clue|answer|way\s+to\s+(?:tell|know))|not\s+sure|unsure|"
                         r"i\s+(?:do\s*n[o']t|cannot|can't)\s+(?:know|tell|say)|cannot\s+(?:tell|say|determine))\b",
                         re.I)


def _whole(line: str, options: list[dict]) -> set[str]:
    """A line that is nothing but an answer: "B", "(C).", "**D. Heparin**", "Heparin" (not "[ ] D", "D ❌")."""
    if re.match(r"\s*[-*]?\s*\[ \]", line) or REJECTED.search(line[-3:]):
        return set()
    found = read_span(line, options, strict=True)
    if len(found) != 1:
        return found
    x = next(iter(found))
    own = next((o["text"] for o in options if o["letter"] == x), "")
    core = norm(re.sub(rf"^[\W_]*(?:option\s+|choice\s+)?{x}(?![\w'’])", "", line.strip(), flags=re.I))
    return found if core in ("", norm(own)) or norm(line) == norm(own) else set()


_CUE = re.compile(r"(?:^|[.,;:!?(\n]|\b(?:is|be|are|was|were|choose|select|pick|recommend|prefer|suggests?|"
                  r"answer|diagnosis|with|go|option|choice)\s+(?:a|an|the|for)?)\s*$", re.I)


def _text_mentions(t: str, options: list[dict]) -> set[str]:
    """Letters of the options whose whole text occurs in an answer-like place (a sentence start,
    after "is", "choose", ...), not negated (longest option wins)."""
    hits = []
    for o in options:
        words = norm(o["text"]).split()
        if not words or len(words) == 1 and len(words[0]) == 1 or _clashes(o, options):
            continue   # a one-letter option ("choose a treatment" is not option "A"); "<20%" vs ">20%"
        pattern = r"(?<![^\W_])(?<![-+−<>≤≥±])" + r"[\W_]+".join(re.escape(w) for w in words) + r"(?![^\W_])"
        for m in re.finditer(pattern, t, re.I):
            before = t[max(0, m.start() - 40):m.start()]
            after = t[m.end():m.end() + 200]
            opening = re.search(r"(?:^|[.,;:!?(\n])\s*$", before)   # a sentence start: only with a verdict after it
            if _CUE.search(before) and not _NEGATED_TEXT.search(norm(before[-30:]) + " ") and \
                    not REJECTED.match(after) and \
                    (not opening or re.match(r"\s*(?:[.!?\n]|$)", after) or _VERDICT.match(after) or _TEXT_GO.match(after)):
                hits.append(o)
                break
    hits = [o for o in hits if not any(o is not p and norm(o["text"]) in norm(p["text"]) for p in hits)]
    return {o["letter"] for o in hits}


_NEGATED_TEXT = re.compile(r"\b(?:not|no|never|isn't|isn t|rather than|instead of|except|exclude|excludes|ruled out|"
                           r"rule out|unlike|against)\s+(?:\w+\s+)?$")
