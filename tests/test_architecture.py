"""The import layers of pyproject.toml's [tool.importlinter] contract hold (lint-imports), and the
check is real: the same contract fails on a copy of the package with one import running back up."""
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
                              "sys.exit(lint_imports_command())", "--no-cache"]


def _lint(where: Path) -> subprocess.CompletedProcess:
    return subprocess.run(LINT, cwd=where, env={"PYTHONPATH": str(where), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=300)


def test_layers_and_no_cycles():
    r = _lint(ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "2 kept, 0 broken" in r.stdout


def test_an_import_back_up_breaks_the_contract(tmp_path):
    shutil.copytree(ROOT / "medeval", tmp_path / "medeval", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    stats = tmp_path / "medeval" / "stats.py"   # a low layer reaching up into the runner, inside a function
    stats.write_text(stats.read_text() + "\n\ndef _up():\n    from .runs.runner import RunConfig\n    return RunConfig\n")
    r = _lint(tmp_path)
    assert r.returncode != 0
    assert "medeval.stats is not allowed to import medeval.runs" in r.stdout


def test_benchmarks_import_only_names_the_package_has():
    """A module move must update the benchmarks too: every `from medeval... import x` there resolves."""
    import ast
    import importlib
    import importlib.util

    missing = []
    for f in sorted((ROOT / "benchmarks").glob("*.py")):
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("medeval") and not node.level:
                try:
                    mod = importlib.import_module(node.module)
                except ImportError:
                    missing.append(f"{f.name}:{node.lineno} {node.module}")
                    continue
                missing += [f"{f.name}:{node.lineno} {node.module}.{a.name}" for a in node.names
                            if not hasattr(mod, a.name) and importlib.util.find_spec(f"{node.module}.{a.name}") is None]
    assert not missing, missing


def test_the_top_level_holds_the_layers_and_at_most_twelve_modules():
    """Issue 22: each layer is a folder; only cross-cutting helpers sit directly in medeval/."""
    pkg = ROOT / "medeval"
    modules = sorted(p.name for p in pkg.glob("*.py"))
    assert len(modules) <= 12, modules
    for layer in ("tasks", "backends", "graders", "scoring", "runs", "results", "reporting", "metrics", "history"):
        assert (pkg / layer / "__init__.py").is_file(), layer
