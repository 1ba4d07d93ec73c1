"""The optimiser and the learning-rate schedule, written out.

AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", 2019): Adam's
moment estimates, with the weight decay applied to the weights directly rather
than added to the gradient. Added to the gradient (Adam with L2, what
``torch.optim.Adam(weight_decay=...)`` does), the decay would be rescaled by
Adam's per-parameter step size and parameters with large gradients would barely
decay. ``tests/test_optim.py`` checks this implementation against torch's own
AdamW arithmetic (the function ``torch.optim.AdamW`` runs) step for step, and
``tests/test_loop.py`` checks the training loop's updates, clipping and schedule
included, against a recomputation.

Why not ``torch.optim.AdamW`` itself: creating any ``torch.optim`` optimiser
imports ``torch._dynamo`` (about 1.5 s on a laptop CPU), which nearly doubles the
start-up of a short run and of every test that trains. This one is 40 lines.
"""

from __future__ import annotations

import math

import torch


class AdamW:
    """AdamW over parameter groups (dicts with "params" and "weight_decay")."""

    def __init__(self, param_groups: list[dict], lr: float, betas, eps: float = 1e-8):
        self.param_groups = [
            {**group, "params": list(group["params"]), "lr": lr, "betas": tuple(betas), "eps": eps}
            for group in param_groups
        ]
        # Per parameter: step count, first moment (mean) and second moment of its gradient.
        self.state: dict[torch.Tensor, dict] = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for param in group["params"]:
                if set_to_none:
                    param.grad = None
                elif param.grad is not None:
                    param.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        for group in self.param_groups:
            lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                grad = param.grad
                state = self.state.get(param)
                if state is None:
                    state = self.state[param] = {
                        "step": 0,
                        "exp_avg": torch.zeros_like(param),
                        "exp_avg_sq": torch.zeros_like(param),
                    }
                state["step"] += 1
                t, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
                # Decoupled weight decay: shrink the weights, independent of the gradient.
                param.mul_(1 - lr * group["weight_decay"])
                m.lerp_(grad, 1 - beta1)  # m = beta1 * m + (1 - beta1) * g
                v.mul_(beta2).addcmul_(
                    grad, grad, value=1 - beta2
                )  # v = beta2 * v + (1 - beta2) * g^2
                # Both moments start at 0: divide out that bias (large in the first steps).
                bias1, bias2 = 1 - beta1**t, 1 - beta2**t
                denom = (v.sqrt() / math.sqrt(bias2)).add_(eps)
                param.addcdiv_(m, denom, value=-lr / bias1)

    def state_dict(self) -> dict:
        """Tensors and plain data only (a weights_only checkpoint can hold it);
        parameters are referred to by their position, as in torch.optim."""
        index = {}
        for group in self.param_groups:
            for param in group["params"]:
                index[param] = len(index)
        return {
            "state": {index[p]: dict(s) for p, s in self.state.items()},
            "param_groups": [
                {
                    **{k: v for k, v in g.items() if k != "params"},
                    "params": [index[p] for p in g["params"]],
                }
                for g in self.param_groups
            ],
        }

    def load_state_dict(self, saved: dict) -> None:
        params = [p for group in self.param_groups for p in group["params"]]
        for group, saved_group in zip(self.param_groups, saved["param_groups"], strict=True):
            group.update({k: v for k, v in saved_group.items() if k != "params"})
            if len(group["params"]) != len(saved_group["params"]):
                raise ValueError("the optimiser state belongs to a different model")
        self.state = {
            params[int(i)]: {
                "step": s["step"],
                "exp_avg": s["exp_avg"].to(params[int(i)]),
                "exp_avg_sq": s["exp_avg_sq"].to(params[int(i)]),
            }
            for i, s in saved["state"].items()
        }

    def set_lr(self, lr: float) -> None:
        for group in self.param_groups:
            group["lr"] = lr


def build_optimizer(model: torch.nn.Module, cfg) -> AdamW:
    """AdamW; weight decay on matrices only (not on biases or LayerNorm gains)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    return AdamW(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)


def lr_factor(step: int, warmup_steps: int, max_steps: int, min_lr_ratio: float) -> float:
    """Linear warm-up to the peak LR, then cosine decay to min_lr_ratio * peak."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, max_steps - warmup_steps)
    cosine = 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
    return min_lr_ratio + (1.0 - min_lr_ratio) * cosine
