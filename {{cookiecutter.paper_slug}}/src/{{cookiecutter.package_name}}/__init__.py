"""Reproduction code for the paper described in PAPER.md.

Modules, in the order the method builds them: data, model, loss, train, eval.
Support: runtime (seeds, device, batching), ckpt (checkpoint files), and the
commands checkpoints (CHECKPOINTS.md progress) and compare (paper vs ours).
"""
