"""The tools that judge a reproduction. Each is a command:

    python -m {{ cookiecutter.package_name }}.judge.gauntlet     the debugging gauntlet (diagnostics.py,
                                              data_checks.py hold its checks)
    python -m {{ cookiecutter.package_name }}.judge.checkpoints  CHECKPOINTS.md: questions answered per phase
    python -m {{ cookiecutter.package_name }}.judge.sweeps       a sweep's summary (written by itself after -m)
    python -m {{ cookiecutter.package_name }}.judge.compare      paper vs ours over seeds: matches / OFF
    python -m {{ cookiecutter.package_name }}.judge.report       REPORT.md, README results, released weights

They read the project only through its contract (data.py, model.py, loss.py, the
configs; player_steps.py: its one loss or its players) and what runs leave on disk
(runs.py), so they judge a user's own method
as they judge the bundled example. When to change them: rarely; a check that
cannot apply to a method says n/a and why, rather than needing an edit here.
"""
