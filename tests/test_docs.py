"""The documentation site builds with no warning: a broken link, a page missing from the site,
a stale ``::: module`` reference or a CLI command that no longer exists fails this test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_documentation_site_builds_strictly(tmp_path):
    site = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)], cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    cli = (site / "cli" / "index.html").read_text(encoding="utf-8")
    assert "--scorer-calls-per-task" in cli and "gpo optimize" in cli  # generated from the commands themselves
    api = (site / "reference" / "index.html").read_text(encoding="utf-8")
    assert "from_sources" in api and "claim_run_dir" in api  # and the API from the docstrings


def test_the_readme_is_a_front_door():
    """Under 150 lines, with the two quick-start commands the CI runs."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) < 150
    assert any(line.endswith("/gpo optimize") for line in lines)
    assert ".venv/bin/pip install -e '.[dev,peers,ray]' && .venv/bin/python -m pytest" in lines


def test_the_sizes_table_is_the_sizes_gpo_applies():
    from gpo.config import SIZES

    text = (ROOT / "docs" / "running.md").read_text()
    rows = {line.split("|")[1].strip().split()[0]: [c.strip() for c in line.split("|")[2:-1]]
            for line in text.splitlines() if line.startswith("  | ") and line.split("|")[1].strip().split()[0] in SIZES}
    assert set(rows) == set(SIZES)
    for name, size in SIZES.items():
        caps = size["max_examples"]
        expected = [str(caps.get(s, "all")) for s in ("train", "eval", "test")]
        expected += [str(size["candidates"] or "the preset's"), str(size["search_requests"] or "unlimited")]
        assert rows[name] == expected, name
