"""Prompt text of lm-evaluation-harness's medqa_4options and pubmedqa tasks, for the mirror's field names.

lm-eval's own versions read other copies of the same items (GBaker/MedQA-USMLE-4-options-hf's sent1 /
ending0..3; bigbio/pubmed_qa's CONTEXTS / QUESTION); these functions build the same strings from the
rows of ../shared/data, so both harnesses score identical contexts (vs_lmeval_ll.py checks it).
"""


def medqa_text(doc: dict) -> str:
    lines = "".join(f"{k}. {doc['options'][k]}\n" for k in "ABCD")
    return f"Question: {doc['question']}\n{lines}Answer:"


def pubmedqa_text(doc: dict) -> str:
    abstract = "\n".join(doc["context"]["contexts"])
    return f"Abstract: {abstract}\nQuestion: {doc['question']}\nAnswer:"
