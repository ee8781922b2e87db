"""``gpo``: optimize | resume | evaluate | report | runs | tasks.

Every GPO option of the paper is a flag under its own name (``--momentum-selection-name``),
and the original underscore spellings are accepted too (``--momentum_selection_name``),
as are the original values ``consine`` and ``relavance``. Flags override ``--config``
files (YAML or TOML), which override ``--preset``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import sys
import time
from pathlib import Path

import click

from gpo.config import CHOICES, PRESETS, GPOConfig
from gpo.engine.events import Event
from gpo.errors import USER_ERRORS, BudgetSpent, RunInUse
from gpo.names import DATA_SPLITS, DEFAULT_MAX_TOKENS, ROLES, SCALED_ROLES
from gpo.run.store import SPEC_FILE
from gpo.tasks.task import AnswerKind, TaskError


class UserError(click.ClickException):
    """Printed as one line, exit code 2, no traceback."""

    exit_code = 2


class Commands(click.Group):
    """The ``gpo`` group: every error gpo raises on purpose (``gpo.errors.USER_ERRORS``),
    from any command, reaches the user as one line."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except USER_ERRORS as err:
            raise UserError(" ".join(str(err).split()) or type(err).__name__) from None


HELP = {
    "selection": "race (default): stop candidates significantly worse than the step's leader early; "
                 "full: score every candidate on the whole eval split (the paper's rule).",
    "race_alpha": "Level of racing's paired tests and of every significance shown (default 0.05).",
    "race_block": "Eval examples per racing block (default 8, at least 8).",
    "extraction": "lenient (default): gpo's answer parsing; original: the original code's, quirks included "
                  "(what the paper measured; every paper preset uses it).",
    "objective": "What a split's score is: accuracy (default), or macro_f1 for label, boolean and "
                 "multiple-choice tasks (the mean F1 of the classes, so a prompt that never gives a rare class "
                 "scores low); racing, adoption and intervals then use a paired bootstrap over examples.",
    "warmup_fraction": "Warm up over this share of each task's steps (the paper: 0.05) instead of --warmup-steps.",
    "patience": "End a task's search after this many steps without a new best on eval; its best prompt "
                "is still tested (default 0: never).",
    "probe": "Before each task's search, check whether prompts move the scorer at all (the probe prompts of "
             "`gpo probe` on up to 32 eval examples); a probe significantly better than the initial prompt is "
             "where the search starts. On by default; --no-probe skips it (the paper's presets do).",
    "constrained_replies": "Hold the optimizer's replies for new prompts to one tagged prompt (a llama.cpp grammar, "
                           "or an endpoint's JSON schema). Default: on for llama.cpp models in process, where it "
                           "raises the usable share, off for endpoints (measured to lower it on llama.cpp's server); "
                           "the paper's presets keep free replies.",
    "optimizer_size": "small: GPO's update asks a small optimizer with a short meta-prompt (the examples as "
                      "input -> output, the current instruction, one sentence asked for); large: the paper's full "
                      "one. Default: small for the embedded model (which then writes free replies), large elsewhere.",
    "repair": "Ask again, once per round, for a reply that is no prompt, telling the optimizer why in one "
              "sentence (default 1; 0: never, as the paper's presets).",
    "adopt": "significant (default): the best prompt on eval replaces the initial one only if it is "
             "significantly better there at --race-alpha; significant+constant: and also significantly "
             "better there than always giving the best constant answer, without collapsing to one answer "
             "(closed-answer tasks; the quickstart's rule); best: the highest eval mean, the paper's rule "
             "(its presets use it); lcb: the highest lower bound of the gain over the initial prompt, "
             "Bonferroni-corrected for the prompts scored, adopted only above 0.",
    "pool": "best (default): a step updates the method's own choice; pareto: a prompt drawn from the per-example "
            "Pareto frontier of the scored prompts, by the eval examples each wins (GEPA's pool).",
    "merge": "With --pool pareto: up to N merges a search, each asking the optimizer to combine two frontier "
             "prompts that win different examples; raced and paid like any candidate (default 0).",
    "final_holdout": "Keep this share of eval out of the search (e.g. 0.2); the final prompt is chosen there "
                     "among the initial prompt and the 3 best on eval, by --adopt (default 0: none).",
    "length_penalty": "Rank prompts by eval score minus L x tokens / --max-prompt-tokens (per 1,000 tokens "
                      "without a cap; default 0).",
    "max_prompt_tokens": "Set aside candidates over N tokens (4 bytes a token; default 0: no cap).",
}


def _config_options(f):
    """One flag per GPOConfig field, named as in the paper, with underscore aliases."""
    for fld in reversed(dataclasses.fields(GPOConfig)):
        if fld.name in ("budget",):
            continue
        dashed = "--" + fld.name.replace("_", "-")
        names = [dashed] + (["--" + fld.name] if "_" in fld.name else [])
        if fld.type in ("bool", bool, "bool | None"):
            f = click.option(f"{dashed}/--no-{dashed[2:]}", fld.name, default=None,
                             help=HELP.get(fld.name, f"[GPO option {fld.name}]"))(f)
            continue
        typ = {"int": int, "float": float}.get(str(fld.type), str)
        help_text = f"[GPO option] one of: {', '.join(CHOICES[fld.name])}" if fld.name in CHOICES else "[GPO option]"
        help_text = HELP.get(fld.name, help_text)
        f = click.option(*names, fld.name, type=typ, default=None, help=help_text)(f)
    return f


def _scale_options(f):
    """Where and how many copies of the models run; ``gpo resume`` takes these too."""
    f = click.option("--gpus", default=None, metavar="0,1",
                     help="Run in-process models on these GPUs (llama.cpp: all layers split across them; "
                          "vllm:MODEL: tensor parallel).")(f)
    f = click.option("--replica-cpus", type=float, default=None,
                     help="CPUs each Ray replica reserves and uses (default 1).")(f)
    f = click.option("--ray-address", default=None, metavar="auto|ADDRESS",
                     help="Ray cluster for model replicas (default with replicas: start a local Ray).")(f)
    for role in SCALED_ROLES:
        f = click.option(f"--{role}-replicas", type=int, default=None,
                         help=f"Run the in-process {role} model as N Ray actors (needs gpo[ray]).")(f)
        f = click.option(f"--{role}-prefix-cache", type=int, default=None, metavar="MB",
                         help=f"In-process llama.cpp {role}: MiB of prompt-prefix KV states kept, so requests that "
                              "begin alike (and a second round) read their common start once (default 512; "
                              "0: off, every prompt read whole as before).")(f)
        f = click.option(f"--{role}-parallel", type=int, default=None,
                         help=f"In-process llama.cpp {role}: decode up to N requests together (default 1).")(f)
        f = click.option(f"--{role}-base-url", default=None,
                         help=f"OpenAI-compatible endpoint for the {role}; several, comma-separated, are balanced.")(f)
    return f


def _model_options(f):
    f = _scale_options(f)
    f = click.option("--judge-api-key-env", default=None, metavar="VAR", help="Environment variable holding the judge's API key.")(f)
    f = click.option("--judge-base-url", default=None, help="OpenAI-compatible endpoint for the judge.")(f)
    f = click.option("--judge-model", default=None,
                     help="--metric judge: the grading model, as --optimizer-model (default: the optimizer's).")(f)
    for role in SCALED_ROLES:
        f = click.option(f"--{role}-price", default=None, metavar="IN,OUT[,CACHED_IN]",
                         help=f"{role.title()} price in USD per million prompt,completion tokens (for cost figures and "
                              "--max-cost); a third value prices prompt tokens the endpoint served from its prompt "
                              "cache (as it reports them).")(f)
        f = click.option(f"--{role}-concurrency", type=int, default=None,
                         help=f"Most {role} requests in flight at once (endpoint default 8).")(f)
        f = click.option(f"--{role}-api-key-env", default=None, metavar="VAR",
                         help=f"Environment variable holding the {role}'s API key (default OPENAI_API_KEY).")(f)
        f = click.option(f"--{role}-model", default=None,
                         help=f"{role.title()} model: 'embedded' (SmolLM2-135M, default), a .gguf path, or a served model name.")(f)
    return f


def _task_options(f):
    opts = [
        click.option("--dataset", default=None, help="bbh, mmlu, gsm8k, webnlg, wsc (needs --data-dir), 'synthetic', 'user' or 'hf'."),
        click.option("--task", "tasks", multiple=True, help="Task name(s); repeat or comma-separate; 'all' for every task."),
        click.option("--data-dir", default=None, type=click.Path(), help="Folder with the GPO data layout (bbh/, mmlu/, ...)."),
        click.option("--data-file", "data_files", multiple=True, help="User data: FILE, or SPLIT=FILE (train/eval/test/format/few_shot)."),
        click.option("--hf-name", default=None, metavar="DIR|NAME",
                     help="--dataset hf: a Hugging Face dataset saved with save_to_disk (or a hub name, where reachable)."),
        click.option("--hf-split", "hf_split", multiple=True, metavar="SPLIT=NAME",
                     help="--dataset hf: which dataset split is gpo's train, eval or test, e.g. eval=validation."),
        click.option("--input-col", default=None, help="Column holding the question (user data)."),
        click.option("--target-col", default=None, help="Column holding the answer (user data)."),
        click.option("--answer-kind", default=None, type=click.Choice([k.value for k in AnswerKind]),
                     help="How replies are read (user data; inferred from the targets by default): 'label' reads "
                          "the one label a reply names, inside a sentence too."),
        click.option("--template", default=None, metavar="FILE|TEXT",
                     help="User data: the prompt, with {column} fields and an {instruction} slot for the optimized text."),
        click.option("--system-template", default=None, metavar="FILE|TEXT",
                     help="User data: the chat scorer's system message (the starting one with --optimize system)."),
        click.option("--optimize", "optimize_target", default=None,
                     type=click.Choice(["instruction", "system", "demos", "instruction+demos"]),
                     help="What is optimized: the instruction (default; with --template, its {instruction} slot), "
                          "the whole system prompt (user data), the demonstrations shown with the initial "
                          "instruction (--method demos, or bootstrap), or both (--method gpo+demos)."),
        click.option("--demos", type=int, default=None, metavar="K",
                     help="Demonstrations per candidate for --optimize demos or instruction+demos (default 3)."),
        click.option("--metric", default=None, metavar="NAME",
                     help="User data: exact, contains, rouge_l, regex:PATTERN, json, json:SCHEMA.json, "
                          "python:MODULE_OR_FILE.py:FUNCTION, or judge (with --judge-rubric)."),
        click.option("--judge-rubric", default=None, metavar="FILE|TEXT", help="--metric judge: what a good output is."),
        click.option("--judge-max-tokens", type=int, default=None, help=f"--metric judge: the judge's token limit (default {DEFAULT_MAX_TOKENS})."),
        click.option("--max-examples", multiple=True, metavar="SPLIT=N", help="Cap a split's size, e.g. eval=20."),
        click.option("--scorer-max-tokens", type=int, default=None, help=f"Scorer first-round token limit (default {DEFAULT_MAX_TOKENS})."),
        click.option("--second-round/--no-second-round", default=None, help="Ask chat scorers again for the bare answer."),
        click.option("--base-scorer", is_flag=True, default=False, help="The scorer is a base (non-chat) model: raw prompts."),
    ]
    for o in reversed(opts):
        f = o(f)
    return _program_options(f)


def _program_options(f):
    """A user's program (gpo.tasks.program) instead of one prompt."""
    f = click.option("--prompts", "program_prompts", default=None, metavar="FILE",
                     help="--program: a YAML file of the named prompts it reads, with their initial texts.")(f)
    return click.option("--program", default=None, metavar="MODULE:FUNCTION",
                        help="User data: your pipeline, run(example, prompts, lm), whose named prompts are "
                             "optimized (FILE.py:FUNCTION works too); with --prompts.")(f)


def _budget_options(f):
    for name, typ in (("max_scorer_calls", int), ("max_optimizer_calls", int), ("max_tokens", int), ("max_cost", float)):
        f = click.option("--" + name.replace("_", "-"), name, type=typ, default=None, help="Budget: a hard cap; stop cleanly before passing it.")(f)
    f = click.option("--scorer-calls-per-task", "scorer_calls_per_task", type=int, default=None,
                     help="Search budget: each task's search may send this many scorer requests (cache hits "
                          "included); the final prompt is still tested. Equal budgets compare methods fairly.")(f)
    return click.option("--budget", "size", default=None, metavar="SIZE|TIME|USD",
                        help="The run's size: light, medium (the default), heavy or full (examples scored, "
                             "candidates a step, search requests; docs: Running), or the time or money it must "
                             "fit, e.g. 15m, 2h, 2usd (sized from the plan's upper bound).")(f)


def _method_options(f):
    from gpo.methods import METHODS

    f = click.option("--method-option", "method_option", multiple=True, metavar="KEY=VALUE",
                     help="A method's own option, e.g. beam=4 (repeatable).")(f)
    f = click.option("--method", default=None,
                     help=f"Optimizer: {', '.join(METHODS)} (default gpo; GPO options apply to gpo only).")(f)
    return f


def _mlflow_options(f):
    f = click.option("--mlflow-prompt-name", default=None, metavar="NAME",
                     help="With --mlflow: register each final prompt under this name (default gpo-<dataset>-<task>).")(f)
    f = click.option("--mlflow", "mlflow_uri", is_flag=False, flag_value="sqlite:///mlflow.db", default=None,
                     metavar="[URI]", help="Track the run in MLflow and register its final prompts "
                     "(default store: sqlite:///mlflow.db here; needs gpo[mlflow]). `gpo resume` continues it.")(f)
    return f


def _trackers(run_dir: str, uri: str | None = None, prompt_name: str | None = None) -> list:
    """The MLflow tracker a run asks for, or the one a resumed run already has."""
    from gpo.run.tracking import STATE, MlflowTracker

    if uri is None and prompt_name is None and not (Path(run_dir) / STATE).is_file():
        return []
    return [MlflowTracker(run_dir, uri, prompt_name)]


def _load_tasks(spec):
    from gpo.run.build import load_tasks

    return load_tasks(spec.tasks)  # errors reach the user as one line (Commands)


def build_spec(kw: dict):
    """The run spec from the flags (and --preset / --config): the library builds it."""
    from gpo.run.sources import from_sources

    return from_sources(kw.get("preset"), kw.get("config_file"), kw)


# ---------------------------------------------------------------- progress

class Progress:
    """Live view of a run: task, step, best score, calls, cache hits, tokens, cost, ETA."""

    def __init__(self, mode: str):
        self.mode = mode
        self.start = time.time()
        self.state: dict[str, dict] = {}
        self.usage: dict = {}
        self._live = None
        if mode == "live":
            from rich.console import Console
            from rich.live import Live

            self.console = Console(stderr=True)
            self._live = Live(self._render(), console=self.console, refresh_per_second=4, transient=False)

    def __enter__(self):
        if self._live:
            self._live.__enter__()
        return self

    def __exit__(self, *exc):
        if self._live:
            self._live.update(self._render())
            self._live.__exit__(*exc)

    def __call__(self, event: dict) -> None:
        if self.mode == "json":
            click.echo(json.dumps(event, ensure_ascii=False))
            return
        if event["event"] == Event.RUN_START and event.get("took_over"):
            click.echo(f"the run directory was last held by {event['took_over']}, which ended without letting go "
                       "(killed?): taking it over", err=True)
        if event["event"] == Event.RUN_START and event.get("reused"):
            click.echo("this run directory holds this same run (the same settings): continuing it, as "
                       "gpo resume would; finished work comes from its checkpoints and cache", err=True)
        task = event.get("task")
        if task:
            st = self.state.setdefault(task, {"step": 0, "total": None, "best": None, "status": "running"})
            if event["event"] == Event.INITIAL:
                st["best"] = event["eval"]
            elif event["event"] == Event.STEP:
                st.update(step=event["global_step"] + 1, total=event["total_steps"], best=event["best"])
            elif event["event"] == Event.TASK_DONE:
                st.update(status="done", best=event["final_eval"], test=event.get("final_test"))
        if event["event"] == Event.USAGE:
            self.usage = {k: v for k, v in event.items() if k in ROLES}
        if self.mode == "quiet":
            return
        if event["event"] == Event.PLAN and self._live:
            self.console.print(plan_line(event))
            if event.get("hint"):
                self.console.print(event["hint"])
        if self._live:
            self._live.update(self._render())

    def _render(self):
        from rich.table import Table

        table = Table(title=f"gpo · {time.time() - self.start:,.0f}s", expand=False)
        for col in ("task", "step", "best eval", "status", "ETA"):
            table.add_column(col)
        for task, st in self.state.items():
            total = st.get("total")
            eta = "-"
            if total and st["step"] and st["status"] == "running":
                per = (time.time() - self.start) / st["step"]
                eta = f"{per * (total - st['step']):,.0f}s"
            best = "-" if st["best"] is None else f"{100 * st['best']:.1f}"
            table.add_row(task, f"{st['step']}/{total or '?'}", best, st["status"], eta)
        if self.usage:
            u = self.usage
            table.caption = (
                f"scorer {u['scorer']['calls']} calls ({u['scorer']['cache_hits']} cached) · "
                + (f"judge {u['judge']['calls']} calls · " if "judge" in u else "")
                + f"optimizer {u['optimizer']['calls']} calls ({u['optimizer']['cache_hits']} cached) · "
                f"tokens {sum(u[r]['prompt_tokens'] + u[r]['completion_tokens'] for r in u):,} · "
                f"${sum(u[r]['cost'] for r in u):.4f}"
            )
        return table


def plan_line(event: dict) -> str:
    from gpo.api import format_duration

    whole = " for the whole run (finished work comes from the cache)" if event.get("resume") else ""
    bound = ", an upper bound under racing" if event.get("selection") == "race" else ""
    wall = (f"expected wall time {format_duration(event['estimated_wall_s'])}, at most "
            f"{format_duration(event['upper_wall_s'])}{whole}"
            if event.get("estimated_wall_s") is not None else "wall time: see the ETA once the run is going")
    size = f"size {event['size']}: " if event.get("size") else ""
    return (f"plan: {size}at most {event['scorer_calls']:,} scorer requests{bound}, {event['optimizer_samples']:,} "
            f"optimizer samples; {wall} ({event.get('timing', '')})"
            + "".join(f"\n{event[k]}" for k in ("sized", "unused", "replies") if event.get(k)))


STOP_SIGNALS = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM",
                **({signal.SIGHUP: "SIGHUP"} if hasattr(signal, "SIGHUP") else {})}


def _stop_on_signals(loop: asyncio.AbstractEventLoop, main: asyncio.Task, stop) -> list[int]:
    """Handle Ctrl-C, SIGTERM and SIGHUP: the first pulls ``stop`` (or, before a run has attached
    its meter, cancels ``main``), a second aborts at once. Returns the signals received, as they come."""
    received: list[int] = []

    def on_signal(signum: int) -> None:
        received.append(signum)
        if len(received) > 1:
            os._exit(128 + signum)
        again = "Ctrl-C" if signum == signal.SIGINT else "the signal"
        click.echo(f"\n{STOP_SIGNALS[signum]}: stopping after the requests under way and saving... "
                   f"({again} again to abort)", err=True)
        if stop.attached:
            stop.pull(f"stopped by {STOP_SIGNALS[signum]}")
        else:  # not a run (gpo evaluate), or one not started yet: cancel it
            main.cancel()

    for signum in STOP_SIGNALS:
        try:
            loop.add_signal_handler(signum, on_signal, signum)
        except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover - not on the main thread / Windows
            pass
    return received


def run_with_interrupts(coro_factory, run_dir: str):
    """Run ``coro_factory(stop)``. The first Ctrl-C, SIGTERM (timeout, Slurm, Kubernetes, systemd)
    or SIGHUP pulls ``stop``: no new request is sent, those on the wire finish and are cached,
    the step under way is dropped and the state saved, and the command exits 128 + the signal's
    number (130, 143, 129) with the resume command. A second signal aborts at once."""
    from gpo.llm.meter import StopSwitch

    loop, stop = asyncio.new_event_loop(), StopSwitch()
    main = loop.create_task(coro_factory(stop))
    received = _stop_on_signals(loop, main, stop)

    def stopped() -> None:
        click.echo(f"stopped. Resume with: gpo resume {run_dir}", err=True)
        sys.exit(128 + (received[0] if received else signal.SIGINT))

    try:
        results = loop.run_until_complete(main)
    except asyncio.CancelledError:
        stopped()
    except USER_ERRORS as err:
        if received and isinstance(err, BudgetSpent):  # the stop came before anything was scored
            stopped()
        if isinstance(err, RunInUse) or not (Path(run_dir) / SPEC_FILE).is_file():  # refused before the run began
            raise
        raise UserError(f"{err} (resume with: gpo resume {run_dir})")
    finally:
        _drain(loop)
    if received and any(r.stopped for r in results):
        stopped()
    return results


def _drain(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is still running (shielded evaluations too) and close the loop cleanly."""
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for t in pending:
        t.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.run_until_complete(loop.shutdown_default_executor())
    loop.close()


def _default_run_dir() -> str:
    return str(Path("runs") / time.strftime("%Y%m%d-%H%M%S"))


def _print_results(results) -> None:
    from gpo.engine.outcome import gain, outcome

    click.echo()
    for r in results:
        said = outcome(r)
        stop = f" (stopped: {r.stopped})" if r.stopped else (f" ({r.search_ended})" if r.search_ended else "")
        figure = "" if r.objective == "accuracy" else " macro-F1"
        click.echo(f"[{r.method}] {r.dataset}/{r.task}: eval{figure} {100 * r.initial_eval:.1f} -> {100 * r.final_eval:.1f}"
                   f"{gain(said.gains.get('eval'))}{stop}")
        if r.final_test is not None:
            click.echo(f"  test{figure} {100 * r.initial_test:.1f} -> {100 * r.final_test:.1f}{gain(said.gains.get('test'))}")
        for line in said.lines():
            click.echo("  " + line)
    if any(r.final_test is not None for r in results):
        click.echo("(eval gains are measured on the split the prompt was chosen on, so they lean optimistic; "
                   "test is the unbiased check)")


# ---------------------------------------------------------------- commands

@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gpo")
def main() -> None:
    """GPO: optimize prompts with an LLM as the optimizer (Tang et al.).

    With no options, `gpo optimize` runs the quickstart on the embedded SmolLM2-135M model
    (no API key, no download): a demonstration search on instruction induction's
    singular_to_plural task, in 2 to 3 minutes on 2 CPU cores.
    """


@main.command()
@click.option("--preset", default=None, help="Named setting (default gpo = the paper's recipe); `gpo presets` lists them.")
@click.option("--config", "config_file", default=None, help="YAML or TOML file of options; flags override it.")
@_task_options
@_model_options
@_method_options
@_config_options
@_budget_options
@click.option("--run-dir", default=None, help="Where the run is written (default runs/<timestamp>). A directory "
              "holding this same run resumes it; one holding another run is refused (see --overwrite).")
@click.option("--overwrite", is_flag=True, default=False,
              help="If --run-dir holds a run with other settings, remove it and start afresh (nothing is kept).")
@click.option("--concurrent-tasks", type=int, default=4, show_default=True, help="Tasks optimized at the same time.")
@click.option("--dry-run", is_flag=True, help="Print the planned calls and tokens, then stop.")
@click.option("--progress", type=click.Choice(["live", "quiet", "json"]), default="live", help="live view, quiet, or JSON-lines events on stdout.")
@_mlflow_options
def optimize(**kw) -> None:
    """Optimize prompts for one or more tasks."""
    from gpo.api import optimize_async, plan_with_time

    tracking = {k: kw.pop(k) for k in ("mlflow_uri", "mlflow_prompt_name")}
    spec = build_spec(kw)
    tasks = _load_tasks(spec)  # once per command
    if kw["dry_run"]:
        planned = asyncio.run(plan_with_time(spec, tasks))
        click.echo(json.dumps(planned, indent=2))
        if planned.get("hint"):
            click.echo(planned["hint"], err=True)
        return
    run_dir = kw["run_dir"] or _default_run_dir()
    trackers = _trackers(run_dir, tracking["mlflow_uri"], tracking["mlflow_prompt_name"])
    with Progress(kw["progress"]) as progress:
        results = run_with_interrupts(
            lambda stop: optimize_async(spec, run_dir, [progress, *trackers], tasks=tasks, overwrite=kw["overwrite"],
                                        stop=stop), run_dir)
    if kw["progress"] != "json":
        _print_results(results)
        click.echo(f"run directory: {run_dir}  (gpo report {run_dir})")


@main.command()
@click.argument("run_dir", type=click.Path())
@click.option("--progress", type=click.Choice(["live", "quiet", "json"]), default="live")
@_scale_options
def resume(run_dir: str, progress: str, **scale) -> None:
    """Continue a stopped run where it left off; finished calls come from the cache.

    The scale options may differ from the first run's (other servers, more replicas):
    they change where answers come from, not what is asked."""
    from gpo.api import RunSpec, optimize_async
    from gpo.run.sources import check_model, place
    from gpo.run.store import read_spec

    spec = RunSpec.from_dict(read_spec(run_dir))
    place(spec, scale)
    for name in SCALED_ROLES:
        check_model(getattr(spec, name), name)
    with Progress(progress) as view:
        listeners = [view, *_trackers(run_dir)]
        results = run_with_interrupts(lambda stop: optimize_async(spec, run_dir, listeners, resume=True, stop=stop),
                                      run_dir)
    if progress != "json":
        _print_results(results)


@main.command()
@click.option("--prompt", "prompts", multiple=True,
              help="Prompt to score (repeatable); prompts:/NAME/VERSION: one gpo registered in MLflow (see --mlflow).")
@click.option("--prompts-file", default=None, type=click.Path(), help="JSONL with 'prompt' (and dataset/task), e.g. optimized_prompts.jsonl.")
@click.option("--split", default="test", type=click.Choice(DATA_SPLITS))
@click.option("--out", "out_dir", default=None, help="Folder for per-example records (default runs/eval-<timestamp>).")
@click.option("--preset", default=None, hidden=True)
@click.option("--config", "config_file", default=None, help="YAML or TOML file of options.")
@_task_options
@_model_options
@click.option("--instruction-pos", "--instruction_pos", "instruction_pos", default=None)
@click.option("--include-qa/--no-include-qa", "include_qa", default=None)
@click.option("--few-shot", "few_shot_number", type=int, default=None, help="Score with N demonstrations.")
@click.option("--mlflow", "mlflow_uri", default=None, metavar="URI",
              help="The MLflow store a prompts:/ URI is read from (default sqlite:///mlflow.db).")
def evaluate(prompts, prompts_file, split, out_dir, mlflow_uri, **kw) -> None:
    """Score prompts on a split with per-example records written to disk."""
    from gpo.api import evaluate_async, read_prompt_file

    if kw.get("few_shot_number"):
        kw["evaluate_generated_ins_on_few_shot"] = True
    spec = build_spec({**kw, "size": "full"})  # whole splits: --max-examples caps them, no run size does
    if any(p.startswith("prompts:/") for p in prompts):
        from gpo.run.tracking import registered_instruction

        prompts = [registered_instruction(p, mlflow_uri) if p.startswith("prompts:/") else p for p in prompts]
    jobs: list[tuple[str | None, str]] = [(None, p) for p in prompts]
    if prompts_file:
        try:
            rows = read_prompt_file(prompts_file)
        except (OSError, TaskError) as err:
            raise UserError(str(err))
        jobs += [(r["task"], r["prompt"]) for r in rows]
    if not jobs:
        jobs = [(None, "")]
    out_dir = out_dir or str(Path("runs") / f"eval-{time.strftime('%Y%m%d-%H%M%S')}")

    tasks = _load_tasks(spec)
    results = run_with_interrupts(lambda stop: evaluate_async(spec, jobs, split, out_dir, tasks), out_dir)
    _print_evaluations(results, spec, split)
    click.echo(f"per-example records: {out_dir}")


@main.command("probe")
@click.option("--preset", default=None, help="Named setting; `gpo presets` lists them.")
@click.option("--config", "config_file", default=None, help="YAML or TOML file of options; flags override it.")
@_task_options
@_model_options
@_config_options
@click.option("--sample", type=int, default=None, metavar="N",
              help="Eval examples each probe prompt is scored on (default 32, or all of eval if fewer).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per task instead of lines.")
def probe_cmd(sample, as_json, **kw) -> None:
    """Whether prompts move the scorer on the task at all, before any search: the initial prompt, the
    empty one, an answer-format instruction and two demonstration sets, scored on a sample of eval
    and tested together (Cochran's Q or Friedman, permutation p-values)."""
    from gpo.api import probe_async
    from gpo.scoring.headroom import SAMPLE

    if sample is not None and sample < 2:
        raise UserError(f"--sample {sample}: a probe needs at least 2 eval examples")
    spec = build_spec(kw)
    tasks = _load_tasks(spec)
    found = asyncio.run(probe_async(spec, tasks, sample or SAMPLE))  # its answers stay in the response cache
    for h in found:
        if as_json:
            click.echo(json.dumps(h.as_dict(), ensure_ascii=False))
            continue
        scores = ", ".join(f"{name} {100 * score:.1f}" for name, score in h.scores.items())
        click.echo(f"[probe] {h.task} ({h.n} eval examples): {scores}")
        click.echo("  " + h.verdict())


def _print_evaluations(results, spec, split: str) -> None:
    """Each prompt's score with its interval (against the first prompt of its task), its
    verdict against the best constant answer, its per-class figures and the human reference."""
    from gpo.scoring.constant import measure, verdict
    from gpo.scoring.demos import describe
    from gpo.scoring.objective import describe_classes
    from gpo.scoring.reference import describe as describe_reference

    first: dict[str, object] = {}
    for task, ev, reference in results:
        versus = ""
        if task.id in first:
            versus = f"  vs the first: {ev.versus(first[task.id], alpha=spec.config.race_alpha).describe()}"
        first.setdefault(task.id, ev)
        figure = "" if ev.objective.name == "accuracy" else "macro-F1 "
        click.echo(f"{task.id} [{split}, n={ev.n}] {figure}{100 * ev.score:.1f} ± {100 * ev.ci95:.1f}  "
                   f"{describe(ev.instruction)}{versus}")
        measured = measure(task, ev, spec.config.extraction, spec.config.race_alpha, objective=ev.objective)
        if measured:
            click.echo(f"  {verdict(measured, split)}")
            click.echo(f"  per class: {describe_classes(measured['classes'])}")
        if reference and ev.instruction != task.human_instruction:
            click.echo(f"  {describe_reference(reference, 'this prompt')}")


@main.command()
@click.argument("run_dir", type=click.Path())
def report(run_dir: str) -> None:
    """Write report.html and PNG charts for a run."""
    from gpo.run.report import write_report

    if not (Path(run_dir) / SPEC_FILE).is_file():
        raise UserError(f"{run_dir} is not a gpo run directory (no run.json)")
    path = write_report(run_dir)
    click.echo(f"report: {path}")


@main.command()
@click.argument("run_dir", type=click.Path())
@click.option("--task", default=None, help="Only this task (dataset/task, or its name).")
@click.option("--format", "fmt", type=click.Choice(["text", "messages", "json"]), default="text",
              help="text: each message under its role, scores underneath; messages: the chat messages as JSON "
                   "(an object by task when there are several); json: prompts, messages and results.")
def show(run_dir: str, task: str | None, fmt: str) -> None:
    """The final prompt exactly as the scorer receives it, ready to paste: its messages with
    the instruction, template and demonstrations in place and {field} (or {input}) where each
    example's own text goes; the scores and their intervals underneath."""
    from gpo.engine.outcome import gain, outcome
    from gpo.run.show import shown

    items = shown(run_dir, task)
    if fmt == "messages":
        messages = {i["task"]: i["messages"] for i in items}
        click.echo(json.dumps(next(iter(messages.values())) if len(items) == 1 else messages, ensure_ascii=False, indent=2))
        return
    if fmt == "json":
        click.echo(json.dumps([{**{k: v for k, v in i.items() if k != "result"}, "result": i["result"].as_dict()}
                               for i in items], ensure_ascii=False, indent=2))
        return
    for i in items:
        r = i["result"]
        said = outcome(r)
        click.echo(f"== {i['task']} ({r.method}) ==")
        for m in i["messages"]:
            if i["chat"]:
                click.echo(f"--- {m['role']} ---")
            click.echo(m["content"])
        click.echo("---")
        click.echo(f"eval {100 * r.final_eval:.1f} (initial {100 * r.initial_eval:.1f}){gain(said.gains.get('eval'))}")
        if r.final_test is not None:
            click.echo(f"test {100 * r.final_test:.1f} (initial {100 * r.initial_test:.1f}){gain(said.gains.get('test'))}")
        for line in (said.summary, *(x for x in (said.adoption,) if x), *said.yardstick, *(x for x in (said.length,) if x)):
            click.echo(line)
        click.echo()


@main.command("runs")
@click.argument("root", default="runs", type=click.Path())
def runs_cmd(root: str) -> None:
    """List runs under ROOT with status and best eval scores."""
    from gpo.run.store import run_status

    found = sorted(p.parent for p in Path(root).glob("*/run.json"))
    if not found:
        click.echo(f"no runs under {root}")
        return
    for d in found:
        st = run_status(d)
        best = ", ".join(f"{t} {100 * s:.1f}" for t, s in st["best"].items()) or "-"
        by = f" ({st['by']})" if st.get("by") else ""
        click.echo(f"{d}  {st['status']:<10}  tasks done {st['tasks_done']}  best eval: {best}{by}")


@main.command()
def presets() -> None:
    """List the presets and the paper's condition each one reproduces."""
    from gpo.config import CELLS

    width = max(map(len, PRESETS))
    for name in PRESETS:
        click.echo(f"{name:<{width}}  {CELLS[name]}")


@main.command()
@click.option("--dataset", default=None, help="Only this dataset.")
def tasks(dataset: str | None) -> None:
    """List datasets and tasks with their answer kinds."""
    from gpo.tasks.catalog import DATASETS, task_names, task_profile
    from gpo.tasks.synthetic import GENERATORS

    for ds in ([dataset] if dataset else list(DATASETS) + ["synthetic"]):
        if ds == "synthetic":
            names = list(GENERATORS)
            profiles = {n: task_profile("bbh", n) for n in names}
        else:
            names = task_names(ds)
            profiles = {n: task_profile(ds, n) for n in names}
        click.echo(f"{ds} ({len(names)} tasks)")
        for n in names:
            p = profiles[n]
            click.echo(f"  {n:<45} {p['kind'].value}{'' if p['metric'] == 'exact' else ' (' + p['metric'] + ')'}")


if __name__ == "__main__":  # pragma: no cover
    main()
