"""One run, from what a user gives to what it leaves on disk.

    spec.py      what a run is, as plain data (run.json)
    sources.py   a spec from a preset, a config file and flags, every source checked
    build.py     the spec's live objects: models, tasks, evaluator, embedder, meter, search
    plan.py      what a run will spend, before it runs
    lock.py      one writer per run directory
    store.py     the run directory: spec, events, checkpoints, results
    report.py    the HTML report;  show.py: the best prompt of a finished run
    tracking.py  MLflow: runs, metrics, artifacts, the prompt registry
"""
