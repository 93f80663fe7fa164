"""Prompt text for the lm-eval task: the same string medeval renders from prompts/mcq.jinja.

vs_lmeval.py checks this: it compares lm-eval's logged prompts with medeval's, character for character.
"""

HEADER = ("Answer the following multiple-choice question about medicine. "
          "Reply with the letter of the correct option.\n\n")


def doc_to_text(doc: dict) -> str:
    options = "".join(f"{letter}. {text}\n" for letter, text in doc["options"].items())
    return (HEADER + f"Question: {doc['question']}\n" + options + "Answer:").strip()
