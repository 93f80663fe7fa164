"""Per-sample accounting: why generation stopped, how many tokens it used, and what that cost.

Backends put their counts in `Output.info`: `prompt_tokens` (int, per request), `completion_tokens`
(a list with one count per sample, None where unknown) and, when a server reports only a total for
several samples, `completion_tokens_total`. The cache keeps each sample's own count
(`sample_info`), so a cached re-run reports the same numbers as the run that generated them.

`Tally` sums one task and mode into the `usage` block of results.json; `cost` prices token counts
with `--price-per-mtok IN,OUT` or a YAML price table (docs/results.md, "Usage and cost").
"""
from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

from .errors import MedevalError

TRUNCATED = "length"          # the finish reason of a sample stopped by the token limit
SAMPLE_KEY = "sample_completion_tokens"


PROMPT_KEY = "sample_prompt_tokens"   # the prompt tokens of one call for this sample's prompt
BILLING_KEY = "prompt_billing"         # "per_sample": each sample was its own call; "per_request": shared
SHARE_KEY = "sample_completion_share"  # one call for n samples reports only their total: total / n each


def sample_info(info: dict, j: int) -> dict:
    """What the cache stores with sample j of a request: the request's info plus that sample's own
    completion count and its prompt's count for one call, and whether the prompt is billed per sample
    (the OpenAI backend's seeded per-sample calls) or once per request (HF, vLLM, native n). With these,
    a request's usage follows from its samples alone, whichever run generated them (`tokens_of`)."""
    per = info.get("completion_tokens")
    own = per[j] if isinstance(per, list) and j < len(per) else None
    prompt = info.get("call_prompt_tokens", info.get("prompt_tokens"))   # OpenAI: one call's; else the request's
    per_sample = info.get(BILLING_KEY) == "per_sample"   # the OpenAI backend says; HF and vLLM share the prompt
    total, n = info.get("completion_tokens_total"), len(per) if isinstance(per, list) else 0
    share = total / n if own is None and isinstance(total, int) and n and per.count(None) == n else None
    return {**info, SAMPLE_KEY: own, PROMPT_KEY: prompt if isinstance(prompt, int) else None,
            BILLING_KEY: "per_sample" if per_sample else "per_request", SHARE_KEY: share}


def cached_sample_prompt(info: dict) -> tuple[int | None, str | None, float | None]:
    """(prompt tokens of one call, billing, completion share) stored with a sample; Nones for older rows."""
    if PROMPT_KEY not in info:
        return None, None, None
    return info[PROMPT_KEY], info.get(BILLING_KEY), info.get(SHARE_KEY)


def cached_sample_tokens(info: dict, i: int) -> int | None:
    """The completion tokens of a cached sample (older cache rows: the request's list, by index)."""
    if SAMPLE_KEY in info:
        return info[SAMPLE_KEY]
    per = info.get("completion_tokens")
    return per[i] if isinstance(per, list) and i < len(per) else None


def tokens_of(got: dict) -> dict:
    """{"prompt", "completion", "per_sample"} for one request's generation result (runner.generate_all)."""
    info = got.get("info") or {}
    n = len(got.get("texts") or [])
    per = list(got.get("tokens") or [None] * n)
    total = sum(per) if per and all(isinstance(c, int) for c in per) else info.get("completion_tokens_total")
    prompt = info.get("prompt_tokens")
    stored = got.get("sample_prompts") or []
    if stored and len(stored) == n and all(isinstance(p, int) for p, _, _ in stored):
        # from the samples themselves: each per-sample call bills its prompt, a shared call bills it once
        own = [p for p, billing, _ in stored if billing == "per_sample"]
        shared = [p for p, billing, _ in stored if billing != "per_sample"]
        prompt = sum(own) + (max(shared) if shared else 0)
    if stored and len(stored) == n and all(isinstance(c, int) or isinstance(x[2], float)
                                           for c, x in zip(per, stored)):
        # samples of one call with n choices carry an equal share of the total the server reported
        total = round(sum(c if isinstance(c, int) else x[2] for c, x in zip(per, stored)))
    return {"prompt": prompt if isinstance(prompt, int) else None,
            "completion": total if isinstance(total, int) else None, "per_sample": per}


class Tally:
    """Finish reasons, truncation and token totals of one task and mode."""

    def __init__(self):
        self.samples = self.requests = self.truncated = 0
        self.finish: Counter = Counter()
        self.prompt = self.completion = 0
        self.prompt_known = self.completion_known = 0      # requests whose counts were reported

    def add(self, finishes: list, tokens: dict) -> None:
        self.requests += 1
        self.samples += len(finishes)
        self.finish.update(str(f) if f is not None else "unknown" for f in finishes)
        self.truncated += sum(f == TRUNCATED for f in finishes)
        if tokens["prompt"] is not None:
            self.prompt += tokens["prompt"]
            self.prompt_known += 1
        if tokens["completion"] is not None:
            self.completion += tokens["completion"]
            self.completion_known += 1

    def block(self) -> dict:
        known = self.completion_known == self.requests and self.prompt_known == self.requests
        mean_c = self.completion / self.samples if self.completion_known == self.requests and self.samples else None
        return {"samples": self.samples, "requests": self.requests, "finish_reasons": dict(sorted(self.finish.items())),
                "truncated": self.truncated, "truncation_rate": self.truncated / max(self.samples, 1),
                "prompt_tokens": self.prompt, "completion_tokens": self.completion,
                "total_tokens": self.prompt + self.completion,
                "mean_prompt_tokens": self.prompt / self.prompt_known if self.prompt_known else None,
                "mean_completion_tokens": mean_c,
                "token_counts": "complete" if known else ("none" if not (self.prompt_known or self.completion_known)
                                                          else "partial")}


def is_truncated(finishes: list) -> bool:
    return any(f == TRUNCATED for f in finishes or [])


# ---------------------------------------------------------------- prices
def parse_price(text: str) -> dict:
    """'IN,OUT' (USD per million input and output tokens) -> {"input": IN, "output": OUT}."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 2 or not all(math.isfinite(v) and v >= 0 for v in values):
        raise MedevalError(f"--price-per-mtok {text!r}: expected IN,OUT in USD per million tokens, "
                           "e.g. --price-per-mtok 2.5,10")
    return {"input": values[0], "output": values[1]}


def load_price_table(path: str | Path) -> dict:
    """A YAML mapping model id -> {input: USD per Mtok, output: USD per Mtok}."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise MedevalError(f"{path}: price table not found; pass a YAML file of `model: {{input: X, output: Y}}`")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise MedevalError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict) or not data:
        raise MedevalError(f"{path}: expected a mapping of model id -> {{input: X, output: Y}} (USD per Mtok)")
    table = {}
    for model, p in data.items():
        ok = isinstance(p, dict) and set(p) == {"input", "output"} and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in p.values())
        if not ok:
            raise MedevalError(f"{path}: field {model!r}: needs exactly `input` and `output`, numbers >= 0 "
                               "(USD per million tokens), e.g. {input: 2.5, output: 10}")
        table[str(model)] = {"input": float(p["input"]), "output": float(p["output"])}
    return table


def cost(prompt_tokens: int, completion_tokens: int, price: dict | None) -> float | None:
    if price is None:
        return None
    return (prompt_tokens * price["input"] + completion_tokens * price["output"]) / 1e6


def run_usage(tasks: dict, model_price: dict | None, table: dict, model_id: str, source: str | None) -> dict:
    """The run's `usage` block: generation and judge tokens kept apart, with cost where a price is known.

    Adds `cost_usd` to each task's usage blocks in place when the model's price is known."""
    price = model_price or table.get(model_id)
    gen = Counter()
    judges: dict[str, Counter] = {}
    for t in tasks.values():
        for block in (t.get("usage") or {}).values():
            gen.update({k: block[k] for k in ("requests", "samples", "prompt_tokens", "completion_tokens")})
            if price is not None:
                block["cost_usd"] = cost(block["prompt_tokens"], block["completion_tokens"], price)
        for j in (t.get("judge") or {}, t.get("extract_judge") or {}):   # the task's judge, the extraction judge
            if isinstance(j.get("usage"), dict):
                judges.setdefault(str(j.get("judge")), Counter()).update(j["usage"])
    out = {"generation": {**dict(gen), "price_per_mtok": price,
                          "cost_usd": cost(gen["prompt_tokens"], gen["completion_tokens"], price)},
           "judge": {}, "price_source": source}
    for name, c in judges.items():
        jp = table.get(name)
        out["judge"][name] = {**dict(c), "price_per_mtok": jp,
                              "cost_usd": cost(c["prompt_tokens"], c["completion_tokens"], jp)}
    costs = [out["generation"]["cost_usd"]] + [j["cost_usd"] for j in out["judge"].values()]
    known = [c for c in costs if c is not None]
    out["cost_usd_total"] = sum(known) if known else None
    return out
