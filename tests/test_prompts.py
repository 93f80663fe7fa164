"""Prompt rendering: few-shot turns, system prompts, template variables, prompt hashes."""
from medeval.tasks.data import load_rows
from medeval.tasks.prompts import Renderer
from medeval.runs.runner import RunConfig, prepare
from medeval.tasks.spec import FewShot, Registry

REG = Registry()


def test_fewshot_examples_become_earlier_chat_turns_from_the_named_split(data_dir):
    base = REG.tasks["pubmedqa"]
    task = base.model_copy(update={"fewshot": FewShot(split="train", n=2, seed=0, target="Answer: {{ gold }}")})
    shots = load_rows(task, data_dir, "train")[0]
    r = Renderer(task, fewshot_rows=shots)
    test_row = load_rows(task, data_dir)[0][0]
    msgs = r.messages(test_row, "21645374")
    assert [m[0] for m in msgs] == ["user", "assistant", "user", "assistant", "user"]
    assert msgs[1][1] in ("Answer: yes", "Answer: no", "Answer: maybe")
    assert test_row["question"] in msgs[-1][1]
    train_questions = {s["question"] for s in shots}
    assert all(any(q in m[1] for q in train_questions) for m in msgs[:-1:2])
    assert r.messages(test_row, "21645374") == msgs                 # same item, same examples
    assert r.prompt_hash() != Renderer(base).prompt_hash()            # few-shot settings change the hash


def test_system_prompt_and_variables(data_dir):
    cfg = RunConfig(tasks=["medqa"], limit=2, data_dir=str(data_dir), system_prompt="You are a careful physician.")
    p = prepare(REG.tasks["medqa"], cfg)
    first = p.items[0].messages
    assert first[0] == ("system", "You are a careful physician.")
    assert "A. " in first[1][1] and "D. " in first[1][1] and first[1][1].rstrip().endswith("Answer:")


def test_reasoning_variant_changes_template_and_generation(data_dir):
    cfg = RunConfig(tasks=["medqa"], limit=1, data_dir=str(data_dir), prompt_variant="reasoning")
    p = prepare(REG.tasks["medqa"], cfg)
    assert "\\boxed{LETTER}" in p.items[0].messages[-1][1]
    assert p.task.generation.max_tokens == 2048 and p.task.generation.stop == []
