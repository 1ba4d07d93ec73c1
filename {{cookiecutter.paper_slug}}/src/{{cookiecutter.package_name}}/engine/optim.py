"""The optimisers and learning-rate schedules a paper's recipe names.

``optim=<name>`` (configs/optim/) picks the optimiser, ``schedule=<name>``
(configs/schedule/) the LR's shape over training; ``optim.lr`` is always the peak
LR and a schedule is a factor on it (1.0 at its peak), so changing one never
needs the other's internals: ``optim=rmsprop schedule=constant`` just works.

Optimisers are torch.optim's, except the default AdamW on a CPU or Apple GPU,
written out below. Creating any ``torch.optim`` optimiser imports
``torch._dynamo`` (~0.8 s on 2 CPU cores), which makes the start-up of a short
run 1.6x as long, and of every test that trains; this AdamW is 40 lines, and
``tests/test_optim.py`` checks it against torch's own AdamW arithmetic step for
step. On CUDA every optimiser is torch.optim's with its fused (or multi-tensor
"foreach") kernels: a Python loop over parameters launches several small kernels
per tensor, which costs real time on a GPU.

AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", 2019): Adam's
moment estimates, with the weight decay applied to the weights directly rather
than added to the gradient. Added to the gradient (Adam with L2, what
``optim=adam`` with ``weight_decay`` does, as in torch), the decay is rescaled by
Adam's per-parameter step size and parameters with large gradients barely decay.
For SGD and RMSProp, ``weight_decay`` is the L2 term added to the gradient, as in
torch.optim and as most papers using them mean it. Every optimiser decays weight
matrices only, never biases or normalisation gains.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from functools import partial
from types import SimpleNamespace

import torch

from .runtime import plain


class ConfigError(ValueError):
    """A config the schema accepts but the code cannot run as asked (a key the chosen
    optimiser does not read, a batch that does not divide): the commands print it as
    one line."""


# The keys each optimiser reads beyond lr, weight_decay and grad_clip. A key set for
# another optimiser is an error rather than silently ignored: ``optim=sgd
# optim.betas=[0.9,0.99]`` would otherwise train something other than intended.
OPTIMISER_KEYS = {
    "adamw": ("betas", "eps"),
    "adam": ("betas", "eps"),
    "sgd": ("momentum", "nesterov"),
    "rmsprop": ("alpha", "eps", "momentum", "centered"),
}
SCHEDULE_KEYS = {
    "constant": (),
    "cosine": ("min_lr_ratio",),
    "linear": ("min_lr_ratio",),
    "step": ("step_size", "gamma"),
    "inverse_sqrt": (),
}


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


class WeightAverage:
    """An exponential moving average of a model's weights (trainer.ema_decay), as
    DDPM (decay 0.9999) and many vision papers evaluate: after every update,
    average <- decay * average + (1 - decay) * weights. Buffers (batch-norm
    statistics) are copied, not averaged. It starts at the initial weights, so with
    a decay of 0.9999 the first few thousand updates still show mostly those."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.model = copy.deepcopy(model)
        self.model.requires_grad_(False)
        self.params = list(self.model.parameters())
        self.buffers = list(self.model.buffers())
        self._pairs = {}  # names -> (average's tensors, model's tensors), made once

    @torch.no_grad()
    def update(self, model: torch.nn.Module, names: tuple[str, ...] | None = None) -> None:
        """After an update of every parameter, or of those ``names`` (one player's:
        each player's weights are averaged after its own steps)."""
        if names is None:
            mine, theirs = self.params, list(model.parameters())
        else:
            if names not in self._pairs:
                averaged, trained = (
                    dict(self.model.named_parameters()),
                    dict(model.named_parameters()),
                )
                self._pairs[names] = ([averaged[n] for n in names], [trained[n] for n in names])
            mine, theirs = self._pairs[names]
        # lerp: average + (1 - decay) * (weights - average), for all tensors at once.
        torch._foreach_lerp_(mine, theirs, 1.0 - self.decay)
        for mine, theirs in zip(self.buffers, model.buffers(), strict=True):
            mine.copy_(theirs)


def build_optimizer(model, cfg, device_type: str = "cpu", group: str = "optim"):
    """The optimiser ``cfg.name`` names (optim config group), over two parameter
    groups: weight matrices with ``cfg.weight_decay``, everything else without.
    ``model``: a module, or the parameters of one player (engine/players.py), whose
    settings ``group`` names in errors (players.critic.optim)."""
    cfg = _checked(group, cfg, OPTIMISER_KEYS)
    found = model.parameters() if isinstance(model, torch.nn.Module) else model
    params = [p for p in found if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    if cfg.name == "adamw" and device_type != "cuda":
        return AdamW(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)
    # Fused kernels where torch has them (CUDA), else the multi-tensor ones on a GPU.
    if device_type == "cuda":
        fast = {"foreach": True} if cfg.name == "rmsprop" else {"fused": True}
    else:
        fast = {}
    if cfg.name in ("adamw", "adam"):
        kind = torch.optim.AdamW if cfg.name == "adamw" else torch.optim.Adam
        return kind(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, **fast)
    if cfg.name == "sgd":
        return torch.optim.SGD(
            groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov, **fast
        )
    # RMSProp as the DQN paper (Mnih et al., 2015) and torch define it: alpha is the
    # squared-gradient average's decay; centered divides by the gradient's variance.
    return torch.optim.RMSprop(
        groups, lr=cfg.lr, alpha=cfg.alpha, eps=cfg.eps, momentum=cfg.momentum,
        centered=cfg.centered, **fast,
    )  # fmt: skip


def set_lr(optimizer, lr: float) -> None:
    """The LR for the next step (every optimiser keeps it per parameter group)."""
    for group in optimizer.param_groups:
        group["lr"] = lr


def build_schedule(cfg, max_steps: int, group: str = "schedule") -> Callable[[int], float]:
    """``schedule(step)``: the LR factor of update ``step`` (0 = the first) for the
    schedule config group ``cfg``; its keys are checked once, here."""
    cfg = _checked(group, cfg, SCHEDULE_KEYS)
    return partial(lr_factor, cfg=cfg, max_steps=max_steps)


def lr_factor(step: int, cfg, max_steps: int) -> float:
    """The LR of update ``step`` (0 = the first) as a fraction of the peak ``optim.lr``.

    Every schedule starts with ``warmup_steps`` of linear warm-up from 1/warmup_steps
    to 1 (none when 0), then follows its shape over the remaining steps:
      constant      1
      cosine        half a cosine from 1 down to min_lr_ratio at max_steps
      linear        a straight line from 1 down to min_lr_ratio at max_steps
      step          gamma ** (number of step_size-long stretches completed)
      inverse_sqrt  sqrt(warmup_steps / n) for update number n = step + 1 ("Attention
                    Is All You Need", eq. 3: peak LR d_model^-0.5 * warmup_steps^-0.5)
    """
    warmup = cfg.warmup_steps
    if step < warmup:
        return (step + 1) / warmup
    if cfg.name == "constant":
        return 1.0
    if cfg.name == "inverse_sqrt":
        return math.sqrt(max(warmup, 1) / (step + 1))
    if cfg.name == "step":
        return cfg.gamma ** ((step - warmup) // cfg.step_size)
    progress = min((step - warmup) / max(1, max_steps - warmup), 1.0)
    shape = 0.5 * (1.0 + math.cos(math.pi * progress)) if cfg.name == "cosine" else 1 - progress
    return cfg.min_lr_ratio + (1.0 - cfg.min_lr_ratio) * shape


def check_keys(optim_cfg, schedule_cfg, prefix: str = "") -> None:
    """The errors ``build_optimizer`` and ``build_schedule`` would raise, before a
    run builds its data and model (``prefix``: players.critic., for a player's)."""
    _checked(f"{prefix}optim", optim_cfg, OPTIMISER_KEYS)
    _checked(f"{prefix}schedule", schedule_cfg, SCHEDULE_KEYS)


def _checked(group: str, cfg, keys_by_name: dict[str, tuple[str, ...]]) -> SimpleNamespace:
    """The config group as a plain object, after an error (one line, naming the key)
    when it sets a key its choice does not read, or leaves out one it does
    (schema.py leaves them all optional)."""
    if not isinstance(cfg, SimpleNamespace):
        cfg = plain(cfg)
    if cfg.name not in keys_by_name:
        raise ConfigError(f"{group}={cfg.name} is not one of {', '.join(keys_by_name)}")
    wanted = keys_by_name[cfg.name]
    all_keys = {key for keys in keys_by_name.values() for key in keys}
    for key in sorted(all_keys):
        value = getattr(cfg, key, None)
        if key in wanted and value is None:
            raise ConfigError(f"{group}.{key} must be set for {group}={cfg.name}")
        if key not in wanted and value is not None:
            raise ConfigError(
                f"{group}.{key}={value} does not apply to {group}={cfg.name} (it reads "
                f"{', '.join(wanted) or 'no other key'}); remove it or choose another {group}"
            )
    return cfg
