"""medeval as users install it: a wheel built from this tree, installed into a fresh virtual environment
(not editable, no path back to the checkout), imports every module and runs `medeval tasks`,
`medeval render` and the leaderboard's shipped presets from a directory outside the repository."""
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from conftest import DATA, ROOT


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(python, medeval script, working directory) of a fresh venv holding only the built wheel.

    Dependencies (torch, transformers, ...) come from this interpreter's site-packages through a
    plain path entry, which Python adds to sys.path without running the .pth files in it, so the
    editable install of the checkout stays invisible."""
    tmp = tmp_path_factory.mktemp("wheel")
    wheels = tmp / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(wheels), str(ROOT)], check=True, cwd=tmp)
    wheel = next(wheels.glob("medeval-*.whl"))
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    # without the caller's PYTHONPATH: a checkout on it (with its medeval.egg-info) would look installed to pip
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True,
                   env=_env())
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True, env=_env()).stdout.strip()
    Path(site, "medeval_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    work = tmp / "elsewhere"
    work.mkdir()
    return py, venv / "bin" / "medeval", work, wheel


def _env():
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MEDEVAL_DATA_DIR")}
    return {**env, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def _run(cmd, cwd):
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=300)


def test_wheel_ships_every_package_and_the_bundled_folders(installed):
    *_, wheel = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    packages = {str(p.parent.relative_to(ROOT)) for p in (ROOT / "medeval").rglob("__init__.py")}
    missing = sorted(p for p in packages if f"{p}/__init__.py" not in names)
    assert not missing, f"packages left out of the wheel: {missing}"
    for folder, pattern in (("tasks", "*.yaml"), ("prompts", "*.jinja"), ("leaderboard/presets", "*.yaml"),
                            ("leaderboard/reported", "*.yaml")):
        expected = {f"medeval/_bundled/{folder}/{p.name}" for p in (ROOT / folder).glob(pattern)}
        assert expected and expected <= names, f"{folder}: {sorted(expected - names)[:3]} not in the wheel"
    assert "medeval/templates/view.html" in names


def test_installed_wheel_imports_every_module(installed):
    py, _, work, _ = installed
    code = ("import importlib, pkgutil, medeval, sys\n"
            "assert 'site-packages' in medeval.__file__, medeval.__file__\n"
            "bad = []\n"
            "for m in pkgutil.walk_packages(medeval.__path__, 'medeval.'):\n"
            "    try:\n"
            "        importlib.import_module(m.name)\n"
            "    except Exception as e:\n"
            "        bad.append(f'{m.name}: {type(e).__name__}: {e}')\n"
            "print('\\n'.join(bad)); sys.exit(1 if bad else 0)\n")
    r = _run([py, "-c", code], work)
    assert r.returncode == 0, r.stdout + r.stderr


def test_installed_cli_lists_tasks_and_renders_from_outside_the_checkout(installed):
    py, medeval, work, _ = installed
    r = _run([py, "-c", "import medeval.paths as p; print(p.bundled_dir('tasks'))"], work)
    assert r.returncode == 0 and "site-packages" in r.stdout and str(ROOT) not in r.stdout, r.stdout + r.stderr
    r = _run([medeval, "tasks"], work)
    assert r.returncode == 0, r.stderr
    for name in ("medqa", "pubmedqa", "mmlu_medical", "neeto_card"):
        assert name in r.stdout
    r = _run([medeval, "render", "--tasks", "medqa", "--limit", "1", "--data-dir", DATA], work)
    assert r.returncode == 0, r.stderr
    assert "Answer" in r.stdout or "answer" in r.stdout
    code = ("from medeval.reporting.presets import load_preset, load_reported\n"
            "print(load_preset('neeto').name, load_reported('neeto_card', '*').citation)")
    r = _run([py, "-c", code], work)
    assert r.returncode == 0 and r.stdout.startswith("neeto"), r.stdout + r.stderr
