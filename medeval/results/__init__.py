"""Result files: the typed results.json schema, its one builder/writer and its one reader, samples files,
provenance (docs/results.md).

- schema.py: `RunResults` and `TaskResults`, every field declared once, with its meaning;
- build.py: `task_results`, `run_results`, `write_results` (used by scoring, runner, score_external, merge);
- read.py: `read_results` -> `Run` (used by the leaderboard, gate, view and merge), `ResultsError`;
- files.py: atomic writes, `SamplesWriter`, `safe_child`; samples.py: `SampleRecord`, one line of a samples file; provenance.py: package versions, git revision,
  redacted command line.
Writes are atomic.
"""
from .build import run_results, task_results, write_results
from .files import SamplesWriter, atomic_write, safe_child
from .provenance import PACKAGES, git_revision, now_iso, package_versions, redact_argv
from .read import ResultsError, Run, normalise_metric_options, read_results
from .samples import SampleRecord
from .schema import GENERATION_MODES, LOGLIKELIHOOD_MODES, MODES, MetricValue, RunResults, TaskResults

__all__ = ["GENERATION_MODES", "LOGLIKELIHOOD_MODES", "MODES", "MetricValue", "PACKAGES", "ResultsError", "Run", "RunResults", "SampleRecord", "SamplesWriter", "TaskResults",
           "atomic_write", "git_revision", "normalise_metric_options", "now_iso", "package_versions",
           "read_results", "redact_argv", "run_results", "safe_child", "task_results", "write_results"]
