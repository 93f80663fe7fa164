"""The results.json schema, declared once: the run block (`RunResults`) and the task block (`TaskResults`).

Every writer (`medeval run`, `score`, `merge`) builds these blocks through medeval/results/build.py, which
validates them against the models below, and every reader (leaderboard, gate, view, merge) reads them
through medeval/results/read.py. docs/results.md shows a full example.

A field may be absent (files from `medeval score`, older runs, hand-made test files); a field that is
present has the type declared here. Blocks whose keys come from elsewhere (a backend's description,
decoding settings, judge summaries) are typed as mappings and documented by their description.

Adding a results field: declare it below, in the order it is written, with a description; pass it to
the builder where it is computed; document it in docs/results.md (tests/test_results_schema.py checks
that every declared field is documented there). A new field is never required of files already written.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# The decoding modes, the keys of a task's per-mode blocks (metrics, invalid, usage, ...), in report order.
GENERATION_MODES = ("greedy", "sc")                       # generated text: one greedy answer, k voted samples
LOGLIKELIHOOD_MODES = ("loglikelihood", "loglikelihood_norm")   # `scoring: loglikelihood` tasks (acc, acc_norm)
MODES = GENERATION_MODES + LOGLIKELIHOOD_MODES


class Block(BaseModel):
    """Reading is forward compatible (unknown keys are kept); the builder refuses undeclared ones."""
    model_config = ConfigDict(extra="allow")


class MetricValue(Block):
    value: float | None = Field(None, description="the metric on all items, a fraction in [0, 1]")
    ci_low: float | None = Field(None, description="95% percentile-bootstrap interval, low end (None: n < 2)")
    ci_high: float | None = Field(None, description="95% percentile-bootstrap interval, high end")
    n: int | None = Field(None, description="items the value is computed on")
    clusters: int | None = Field(None, description="bootstrap units, where the task resamples clusters")


class DatasetInfo(Block):
    hub: str | None = Field(None, description="hub path of the data set")
    config: str | None = Field(None, description="hub config name")
    split: str | None = Field(None, description="split evaluated")
    source: str | None = Field(None, description="where the rows were read: a local file or the hub")


class InvalidCount(Block):
    count: int | None = Field(None, description="items without an answer (pred null)")
    rate: float | None = Field(None, description="count / n")
    samples: int | None = Field(None, description="outputs without an answer")
    truncated: int | None = Field(None, description="invalid items with an output cut by the token limit")
    samples_truncated: int | None = Field(None, description="invalid outputs cut by the token limit")


class CacheInfo(Block):
    hits: int | None = Field(None, description="samples reused from the cache")
    misses: int | None = Field(None, description="samples generated")
    dir: str | None = Field(None, description="the cache directory (None: --no-cache)")
    replaced_surrogates: int | None = Field(None, description="generated samples whose text held lone UTF-16 "
                                            "surrogates, each replaced by U+FFFD")


Mapping = dict[str, Any]
PerMode = dict[str, Mapping]


class TaskResults(Block):
    """tasks.<name>: one task's provenance, metrics and counts."""
    task: str | None = Field(None, description="task name")
    display_name: str | None = Field(None, description="name shown in tables")
    version: int | None = Field(None, description="task version (the task file's `version`)")
    task_hash: str | None = Field(None, description="sha256 of the task spec")
    prompt_hash: str | None = Field(None, description="sha256 of the prompt template sources")
    template: str | None = Field(None, description="the prompt template's name")
    data_hash: str | None = Field(None, description="sha256 of the evaluated items (ids and fields)")
    item_ids_hash: str | None = Field(None, description="sha256 of the sorted evaluated item ids")
    dataset: DatasetInfo | None = Field(None, description="which data: hub, config, split, source")
    n: int | None = Field(None, description="items evaluated")
    n_total: int | None = Field(None, description="items in the split")
    answer_type: str | None = Field(None, description="the task's answer type")
    primary_metric: str | None = Field(None, description="the metric tables and the gate use by default")
    metric_options: dict[str, Mapping] | None = Field(None, description="metric -> the options it was called with")
    modes: list[str] | None = Field(None, description="greedy, sc, loglikelihood, loglikelihood_norm")
    metrics: dict[str, dict[str, MetricValue]] | None = Field(None, description="mode -> metric -> value with CI")
    bootstrap: Mapping | None = Field(None, description="the bootstrap unit (item or cluster) and method")
    invalid: dict[str, InvalidCount] | None = Field(None, description="mode -> items/outputs without an answer")
    usage: PerMode | None = Field(None, description="mode -> finish reasons, tokens, cost")
    ambiguous: PerMode | None = Field(None, description="mode -> hedged answers (count, rate, samples)")
    strata: dict[str, dict[str, Mapping]] | None = Field(None, description="field -> value -> n and metrics per mode")
    skipped: dict[str, int] | None = Field(None, description="--context-policy counts")
    samples_file: str | None = Field(None, description="the task's samples file, next to results.json")
    selection: Mapping | None = Field(None, description="dataset.filter and --limit: rows in the split, the "
                                      "filter, rows it removed, the limit and how the subset was drawn")
    plugins: dict[str, str] | None = Field(None, description="the task's plugin files (metrics): name -> sha256")
    item_labels: Mapping | None = Field(None, description="the --item-labels side file used")
    adversarial_traces: Mapping | None = Field(None, description="the --adversarial-file side file used")
    judge: Mapping | None = Field(None, description="the diagnosis judge's or rubric grader's summary")
    rubric: PerMode | None = Field(None, description="HealthBench: mode -> scores by axis and theme")
    extract_judge: Mapping | None = Field(None, description="--extract-judge verdicts and metrics")
    extract_fallback: Mapping | None = Field(None, description="--extract-fallback self: outputs it answered, "
                                             "metrics and invalid counts with the model's own answers")
    extract_audit: Mapping | None = Field(None, description="--extract-audit: per mode, agreement of the model's "
                                          "own answer with the rules' answer")
    adversarial: Mapping | None = Field(None, description="--adversarial: recovery and misled rates per mode")
    permutation: Mapping | None = Field(None, description="--permute: the option, whether it applied to the "
                                        "task, copies per item and the position-bias table per mode")
    timings: Mapping | None = Field(None, description="seconds spent per stage")
    protocols: dict[str, str] | None = Field(None, description="mode -> how its numbers were made")
    missing_predictions: int | None = Field(None, description="`medeval score`: items without a prediction")
    warnings: list[str] | None = Field(None, description="`medeval score`: what the metrics do not cover")


class RunResults(Block):
    """results.json: one run (or one `medeval score`, or one merge of shards)."""
    schema_version: int | None = Field(None, description="this schema's version (medeval.RESULTS_SCHEMA_VERSION)")
    medeval_version: str | None = Field(None, description="medeval's version")
    created: str | None = Field(None, description="when the file was written (UTC, ISO 8601)")
    git_revision: str | None = Field(None, description="commit of the medeval checkout, or None")
    command: list[str] | None = Field(None, description="argv, with the values of key-like options redacted")
    model: Mapping | None = Field(None, description="the backend's description, id, typed identity and its hash")
    decoding: Mapping | None = Field(None, description="greedy and sc settings, prompt variant, group defaults")
    seed: int | None = Field(None, description="the run's seed")
    packages: dict[str, str] | None = Field(None, description="versions of python and the packages that matter")
    cache: CacheInfo | None = Field(None, description="samples reused and generated")
    timings: Mapping | None = Field(None, description="seconds per stage")
    tasks: dict[str, TaskResults] = Field(description="task name -> task block")
    groups: dict[str, Mapping] | None = Field(None, description="group name -> member tasks and aggregate scores")
    usage: Mapping | None = Field(None, description="the run's tokens and cost; judge tokens apart")
    extraction: Mapping | None = Field(None, description="how answers were read beyond the rules: --extract-judge, "
                                       "--extract-fallback, --extract-audit and the self-answer cue")
    shard: Mapping | None = Field(None, description="--shard I/N: index, count, partition, config, full tasks")
    merged: Mapping | None = Field(None, description="`medeval merge`: count, partition, shard directories")
