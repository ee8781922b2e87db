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


def pytest_collection_modifyitems(config, items):
    """``data`` marks every test that reads the paper's data; ``model`` every test that
    starts a real model server from the GGUF (the in-process ones are checked below)."""
    for item in items:
        names = getattr(item, "fixturenames", ())
        if "data_dir" in names:
            item.add_marker(pytest.mark.data)
        if "gguf_path" in names:
            item.add_marker(pytest.mark.model)


@pytest.fixture(autouse=True)
def _model_marker_is_honest(request, monkeypatch):
    """A test that runs a real model in this process (llama.cpp or sentence-transformers)
    must carry the ``model`` marker, so that ``pytest -m "not model"`` is the fast suite."""
    from gpo.llm import embed, local

    used = []
    for owner, name in ((local.LocalLLM, "_sample"), (embed.SentenceTransformerEmbedder, "embed")):
        real = getattr(owner, name)

        def spy(self, *args, _real=real, **kwargs):
            used.append(type(self).__name__)
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(owner, name, spy)
    yield
    if used and request.node.get_closest_marker("model") is None:
        pytest.fail(f"{request.node.nodeid} runs a real model ({used[0]}) but is not marked "
                    "@pytest.mark.model", pytrace=False)
