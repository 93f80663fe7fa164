"""Which packages the wheel holds; the rest of the metadata is in pyproject.toml.

The code's packages are found, not listed (a new subpackage cannot be left out of the wheel). The
repository keeps tasks/, prompts/ and leaderboard/ at its top (the project's fixed layout); they are
shipped inside the package as medeval/_bundled/<folder>, so an installed medeval finds them in any
prefix (medeval.paths.bundled_dir), and tests/test_packaging.py checks it from a built wheel."""
from setuptools import find_packages, setup

BUNDLED = {  # package inside the wheel -> (folder in the repository, files it ships)
    "medeval._bundled.tasks": ("tasks", ["*.yaml"]),
    "medeval._bundled.prompts": ("prompts", ["*.jinja"]),
    "medeval._bundled.leaderboard.presets": ("leaderboard/presets", ["*.yaml"]),
    "medeval._bundled.leaderboard.reported": ("leaderboard/reported", ["*.yaml"]),
}

setup(
    packages=find_packages(include=["medeval", "medeval.*"]) + list(BUNDLED),
    package_dir={name: folder for name, (folder, _) in BUNDLED.items()},
    package_data={"medeval": ["templates/*.html"], "medeval.testing": ["*.jsonl"],
                  **{name: files for name, (_, files) in BUNDLED.items()}},
)
