"""Reporting: everything that reads result directories (medeval.results.read_results) and shows them.

- the leaderboard: presets.py (column presets, reported rows) -> board.py (`build`: the rows and cells)
  -> renderers markdown.py, html_page.py, charts.py (shared display text and escaping: text.py);
- the regression gate: policy.py (the policy file), paired.py (items paired by id), gate.py (`run_gate`:
  the paired test per task, from medeval.stats, its power, from medeval.power, and the verdicts), gate_report.py (markdown, JSON, rows);
- view.py: one self-contained HTML page of a run, or of a gate comparison;
- cli.py: the `leaderboard`, `gate`, `compare` and `view` commands (registered on medeval's CLI);
- summary.py: the terminal table `medeval run`, `score` and `merge` print after writing results.json.
YAML inputs (presets, reported rows, policies) are read by medeval/safe_yaml.py: bounded and safe.

Adding a leaderboard format: one module with a function of the `Board` (see markdown.py), called from
cli.py's `leaderboard` command behind an option, and a line in docs/leaderboard.md.
The pipeline never imports this package (the import-linter layers in pyproject.toml check it); the CLI
prints a run's summary through summary.py once the run has written its results.
"""
