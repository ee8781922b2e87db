"""The package's import graph: layers point down, and no module imports itself back.

Every ``import``/``from ... import`` of a gpo module counts, at module level or inside a
function (an import inside a function can hide a circle; it does not remove it)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "gpo"
# lower layers first; a module may import only its own layer and those before it
LAYERS = ["gpo.errors", "gpo.names", "gpo.aio", "gpo.files", "gpo.llm", "gpo.tasks", "gpo.scoring", "gpo.prompts",
          "gpo.config", "gpo.engine", "gpo.methods", "gpo.run.spec", "gpo.run.lock", "gpo.run.store", "gpo.run.build",
          "gpo.run.sources", "gpo.run.plan", "gpo.run.sizing", "gpo.run.report", "gpo.run.show", "gpo.run.tracking", "gpo.api", "gpo.cli"]


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gpo"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("gpo"))
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in SRC.rglob("*.py")}
    edges = {}
    for name, path in modules.items():
        targets = set()
        for target in imports_of(path):
            while target not in modules and "." in target:  # "gpo.llm.base.X" style: the module part
                target = target.rsplit(".", 1)[0]
            if target in modules and target != name:
                targets.add(target)
        edges[name] = targets
    return edges


def layer(module: str) -> int:
    return max(i for i, prefix in enumerate(LAYERS) if module == prefix or module.startswith(prefix + ".")) \
        if any(module == p or module.startswith(p + ".") for p in LAYERS) else -1


def test_no_module_imports_itself_back():
    edges = graph()
    # package __init__ files re-export their own modules; the circles that matter are between modules
    edges = {m: {t for t in ts if not m.startswith(t + ".") and not t.startswith(m + ".")} for m, ts in edges.items()}
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        for nxt in edges.get(node, ()):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt] if nxt in stack else [node, nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import circles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_layers_point_down():
    upward = [f"{m} imports {t}" for m, ts in graph().items() for t in ts
              if layer(m) >= 0 and layer(t) > layer(m)]
    assert not upward, "\n".join(upward)


def test_no_code_outside_the_optimizers_asks_which_method_it_is():
    """Methods declare what they need (embedder, test scorings, report rows); nothing else
    branches on a method's name or class."""
    import re

    asks = re.compile(r"""\bmethod\s*[!=]=\s*["']|isinstance\([^)]*,\s*(GPO|SGDM|APE|APO|OPRO|PE2)\b""")
    found = [f"{p.relative_to(SRC)}:{i}" for p in SRC.rglob("*.py") if "methods" not in p.relative_to(SRC).parts
             for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if asks.search(line)]
    assert not found, found


def test_methods_declare_whether_they_need_an_embedder():
    from gpo.config import GPOConfig
    from gpo.methods import method_class

    relevance = GPOConfig(momentum_selection_name="relevance")
    assert method_class("gpo").needs_embedder(relevance)
    assert not method_class("gpo").needs_embedder(GPOConfig(momentum_selection_name="recency"))
    assert not method_class("sgdm").needs_embedder(relevance)  # SGDM fixes its own momentum
    assert not method_class("opro").needs_embedder(relevance)


def test_the_engine_knows_no_method_and_the_prompt_vocabulary_no_search():
    """The folder tree is the architecture: the engine runs any method without importing one,
    and the prompt vocabulary is below both."""
    edges = graph()
    engine = {t for m, ts in edges.items() if m.startswith("gpo.engine") for t in ts}
    assert engine and not {t for t in engine if t.startswith("gpo.methods")}
    prompts = {t for m, ts in edges.items() if m.startswith("gpo.prompts") for t in ts}
    assert not {t for t in prompts if t.startswith(("gpo.engine", "gpo.methods"))}
    assert any(t.startswith("gpo.prompts") for t in engine)  # the engine parses replies with it


def test_no_class_over_200_lines_and_no_function_over_60():
    """Pieces small enough to read at once (issue 35): a longer one is split, not waived."""
    too_long = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            limit = 200 if isinstance(node, ast.ClassDef) else 60 if isinstance(
                node, (ast.FunctionDef, ast.AsyncFunctionDef)) else None
            if limit and node.end_lineno - node.lineno + 1 > limit:
                too_long.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name} "
                                f"({node.end_lineno - node.lineno + 1} lines, limit {limit})")
    assert not too_long, "\n".join(too_long)
