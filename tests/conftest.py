from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT.parent / "shared" / "data" / "gpo"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA_DIR.is_dir():
        pytest.skip(f"benchmark data not found at {DATA_DIR} (../shared/data/gpo beside the project)")
    return DATA_DIR


@pytest.fixture(scope="session")
def gguf_path():
    from gpo.llm import default_gguf_path

    return default_gguf_path()
