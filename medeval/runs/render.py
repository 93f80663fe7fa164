"""`medeval render` and `medeval tasks --data-dir`: what a run would send, checked without a model.

`render_items` goes through the run's own preparation (`prepare.prepare`, `runner.build_requests`),
so the messages, golds, options and decoding shown are the ones a run uses. With a chat model
named, only its tokenizer is loaded and its chat template applied: the exact text the HF backend
feeds the model. `check_data` runs the same preparation on every row of every task with a local file.
"""
from __future__ import annotations

import re
from pathlib import Path

from ..errors import MedevalError
from .config import RunConfig, apply_group_defaults, check_values
from .prepare import prepare
from .runner import build_requests, modes_for
from ..tasks.spec import Task


def render_items(cfg: RunConfig, chat_model: str | None = None, chat_template_kwargs: dict | None = None) -> list[dict]:
    from ..tasks.spec import Registry

    registry = Registry([Path(d) for d in cfg.task_dirs], strict=False)
    cfg = apply_group_defaults(cfg, registry)   # the decoding a run would use (a named group's defaults)
    check_values(cfg)   # what `run` refuses, render refuses too
    tok_render = _tokenizer_render(chat_model, chat_template_kwargs) if chat_model else None
    out = []
    for task in registry.resolve(cfg.tasks):
        p = prepare(task, cfg)
        reqs, mode = build_requests(p, cfg), modes_for(p.task, cfg)[0]
        for it in p.items:
            req = reqs[(it.id, mode)]
            item = {"task": task.name, "id": it.id, "n_total": p.n_total, "gold": it.gold, "options": it.options,
                    "messages": [{"role": r, "content": c} for r, c in req.messages], "chat": req.chat,
                    "prefill": req.prefill or None,
                    "generation": None if req.continuations else {"max_tokens": req.sampling.max_tokens,
                                                                  "stop": list(req.sampling.stop)},
                    "continuations": list(req.continuations) or None,
                    "template": p.renderer.template_name, "warnings": repeated_options(req.messages, it.options)}
            if tok_render is not None:
                item["prompt"] = tok_render(req)
            out.append(item)
    return out


def _tokenizer_render(model: str, kwargs: dict | None):
    """The HF backend's own `render`, on a tokenizer alone (no weights are loaded)."""
    from transformers import AutoTokenizer

    from ..backends.hf import EMBEDDED, HFBackend, embedded_model_dir

    source = str(embedded_model_dir()) if model == EMBEDDED else model
    try:
        tok = AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as e:
        raise MedevalError(f"--chat-template {model}: could not load its tokenizer ({str(e).splitlines()[0]}); "
                           "pass a local model directory, a hub id in the hub cache, or 'embedded'") from None
    shell = HFBackend.__new__(HFBackend)   # render() needs only the tokenizer and the template kwargs
    shell.tok, shell.chat_template_kwargs = tok, kwargs or {}
    return shell.render


def repeated_options(messages, options: list[dict]) -> list[str]:
    """A warning when every option's text appears twice in the last user turn: the question
    field probably already holds its choices, so the template lists them a second time."""
    user = next((c for r, c in reversed(messages) if r == "user"), "")
    texts = [o["text"] for o in options if len(o["text"].strip()) >= 2]
    if texts and all(len(re.findall(re.escape(t.strip()), user)) >= 2 for t in texts):
        return ["every option's text appears twice in the prompt: does the question field already "
                "contain the choices?"]
    return []


def format_item(item: dict) -> str:
    lines = [f"=== {item['task']}  id {item['id']}  (of {item['n_total']})  template {item['template']} ==="]
    lines.append(f"gold: {item['gold']}")
    for o in item["options"]:
        lines.append(f"  option {o['letter']}: {o['text']}" + (f"   (source key {o['key']})" if "key" in o else ""))
    g = item["generation"]
    if g is not None:
        lines.append(f"generation: max_tokens={g['max_tokens']} stop={g['stop']!r} chat_template={item['chat']}")
    else:   # scoring: loglikelihood: nothing is generated; each continuation is scored after the prompt
        lines.append(f"scored continuations: {item['continuations']!r} chat_template={item['chat']}")
    for w in item["warnings"]:
        lines.append(f"WARNING: {w}")
    if "prompt" in item:
        lines += ["--- exact prompt (chat template applied) ---", item["prompt"]]
    else:
        for m in item["messages"]:
            lines += [f"--- {m['role']} ---", m["content"]]
        if item["prefill"]:
            lines += ["--- assistant (pre-filled) ---", item["prefill"]]
    return "\n".join(lines)


def check_data(task: Task, data_dir) -> str | None:
    """None when every row of the task's local file prepares as a run would (fields, options, gold,
    prompt), else the one-line problem naming the first bad row (file: line, field, fix). Tasks
    without a local file are not checked (returns None)."""
    if not data_dir or not task.dataset.local or not (Path(data_dir) / task.dataset.local).is_file():
        return None
    try:
        prepare(task, RunConfig(tasks=[task.name], data_dir=str(data_dir)))
    except MedevalError as e:
        return str(e)
    return None
