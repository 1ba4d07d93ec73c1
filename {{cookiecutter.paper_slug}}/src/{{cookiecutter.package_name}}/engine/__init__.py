"""The machinery the training loop is built from. Nothing here knows the paper:
no module in engine/ imports data.py, model.py or loss.py.

    batches.py   ShuffledBatches (the in-memory batch stream a data.py returns) and
                 the helpers that slice and move batches of tensors or dicts of them
    loader.py    LoaderBatches: a Dataset (files on disk) read by DataLoader workers,
                 the same batches for any number of workers, resumed exactly
    tokens.py    a token stream's windows (TokenWindows), random windows for
                 training (RandomWindows), what a batch of windows determines
    optim.py     the optimisers, LR schedules and weight average a recipe names
    runtime.py   seeds and random states, device, CPU threads, data parallelism
    ckpt.py      checkpoint files: atomic writes, weights_only loads
    guards.py    the loop's refusals: NaN/inf, a recipe it cannot run, a changed
                 config on resume
    players.py   a paper's players (loss.PLAYERS): whose parameters, their settings,
                 their gradients averaged over processes, no step on another's weights
    run_log.py   metrics.jsonl (and TensorBoard), the stall warning
    stats.py     mean, std and Student-t intervals over seeds
    plots.py     training curves, sweep and gauntlet plots

When to change it: when the paper's recipe needs what is not here (an optimiser
or schedule: optim.py and configs/optim/, configs/schedule/; its test replays it
against torch.optim). Everything else should not need opening to reproduce a
paper: tests/ checks each piece on its own.
"""
