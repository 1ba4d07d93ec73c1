"""Reproduction code for the paper described in PAPER.md.

What is where, in the order the method builds it:

    data.py model.py loss.py   the paper's method: yours to replace, phase by phase
    train.py eval.py           the training loop and checkpoint evaluation: yours to
                               tune when the paper's loop differs
    configs/                   Hydra configs and their typed schema (schema.py)
    engine/                    what the loop is built from (optimisers, schedules,
                               batches, seeds, device, checkpoint files): rarely opened
    judge/                     the tools that judge the result (gauntlet, sweeps,
                               compare, report, CHECKPOINTS.md progress): commands

Imports go one way: engine/ knows nothing of the paper; data.py, model.py and
loss.py import only each other and engine/batches.py; train.py and eval.py build on
both; judge/ on everything.
"""

import gc

# Start-up and shutdown speed. `import torch` leaves ~250k Python objects that live
# as long as the process. Python's cyclic garbage collector would walk all of them
# in every full collection: while torch itself imports, while Hydra composes the
# config, and several times as the interpreter shuts down; on 2 cores, ~0.5 s of a
# 1-step run's 1.7 s. So collection is paused while torch imports, and gc.freeze()
# then takes its objects out of the collector's reach for good (they are never freed
# anyway). Everything created afterwards, the model and its tensors included, is
# collected as usual.
_collecting = gc.isenabled()
gc.disable()
import torch  # noqa: E402, F401  (every command and module imports it)

gc.freeze()
if _collecting:
    gc.enable()
