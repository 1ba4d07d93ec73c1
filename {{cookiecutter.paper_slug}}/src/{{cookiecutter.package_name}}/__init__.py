"""Reproduction code for the paper described in PAPER.md.

Modules, in the order the method builds them: data, model, loss, train, eval.
Support: runtime (seeds, device, batching), ckpt (checkpoint files), and the
commands checkpoints (CHECKPOINTS.md progress) and compare (paper vs ours).
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
