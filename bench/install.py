"""How long the README's first command takes to install gpo before the quickstart starts,
from a fresh clone into a new virtual environment with an empty pip cache (every wheel
downloaded and llama-cpp-python compiled, as a new user's first time). Each variant runs in
one run of this script, on this machine, one after the other:

- ``all extras``: torch, then gpo with the extras the tests use (the first command until now);
- ``quickstart only``: torch, then gpo alone (the extras install with the test command);
- ``quickstart only, lean llama.cpp``: the same, llama.cpp built without its multimodal
  library, tools, examples and tests (``CMAKE_ARGS``).

    python -m bench.install [--variants all lean]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._record import record

ROOT = Path(__file__).resolve().parents[1]
LEAN_CMAKE = "-DLLAVA_BUILD=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF"
VARIANTS = {  # name: (what it is, pip steps, extra environment)
    "all": ("all extras: torch, then gpo[dev,peers,ray]", [["torch==2.13.0"], ["-e", ".[dev,peers,ray]"]], {}),
    "core": ("quickstart only: torch, then gpo", [["torch==2.13.0"], ["-e", "."]], {}),
    "lean": ("quickstart only, lean llama.cpp: as above with CMAKE_ARGS", [["torch==2.13.0"], ["-e", "."]],
             {"CMAKE_ARGS": LEAN_CMAKE}),
}
TARGET_S = 8 * 60


def measure(name: str) -> dict:
    what, steps, extra = VARIANTS[name]
    with tempfile.TemporaryDirectory(prefix="gpo-install-") as tmp:
        clone = Path(tmp) / "gpo"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        env = {**os.environ, "PIP_NO_CACHE_DIR": "1", "TMPDIR": tmp, **extra}
        start = time.time()
        subprocess.run([sys.executable, "-m", "venv", ".venv"], cwd=clone, check=True)
        seconds = []
        for args in steps:
            t = time.time()
            subprocess.run([".venv/bin/pip", "install", "--quiet", *args], cwd=clone, env=env, check=True)
            seconds.append(round(time.time() - t, 1))
        total = round(time.time() - start, 1)
        llama = subprocess.run([".venv/bin/python", "-c", "import llama_cpp; print(llama_cpp.__version__)"], cwd=clone,
                               capture_output=True, text=True).stdout.strip()
        # it works: the quickstart's plan, which loads the embedded model and times a request on it
        works = subprocess.run([".venv/bin/gpo", "optimize", "--dry-run"], cwd=clone, env=env,
                               capture_output=True, text=True).returncode == 0
    return {"variant": name, "what": what, "steps_s": seconds, "total_s": total, "llama_cpp": llama, "works": works}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--variants", nargs="+", default=["all", "lean"], choices=list(VARIANTS))
    args = p.parse_args()
    rows = []
    for name in args.variants:
        print(f"installing: {VARIANTS[name][0]} ...", flush=True)
        rows.append(measure(name))
        print(json.dumps(rows[-1]), flush=True)
    table = ["| variant | torch | gpo and its dependencies | in all | `gpo optimize --dry-run` then works |",
             "|---|---|---|---|---|"]
    for r in rows:
        table.append(f"| {r['what']} | {r['steps_s'][0] / 60:.1f} min | {r['steps_s'][1] / 60:.1f} min | "
                     f"{r['total_s'] / 60:.1f} min | {'yes' if r['works'] else 'no'} |")
    fastest = min((r for r in rows if r["works"]), key=lambda r: r["total_s"])
    body = (f"From a fresh clone into a new virtual environment with an empty pip cache (`PIP_NO_CACHE_DIR=1`): "
            f"every wheel downloaded from the package index and llama-cpp-python {rows[0]['llama_cpp']} compiled "
            f"from source. Lean llama.cpp: `CMAKE_ARGS=\"{LEAN_CMAKE}\"`. The quickstart itself is not included.\n\n"
            + "\n".join(table))
    if len(rows) > 1:
        base = next((r for r in rows if r["variant"] == "all"), rows[0])
        body += (f"\n\nThe fastest, {fastest['what']}, takes {fastest['total_s'] / base['total_s']:.2f}× the time of "
                 f"{base['what']}.")
    record("install", "A first install, before the quickstart (issue 26)", body,
           targets=[(f"the README's first command up to the quickstart within {TARGET_S // 60} min "
                     f"({fastest['total_s'] / 60:.1f} min)", fastest["total_s"] <= TARGET_S)])


if __name__ == "__main__":
    main()
