"""The config schema: every key the YAML files beside it may set, with its type.

Hydra merges the YAML files (this directory) onto these dataclasses, so a misspelt key
(``trainer.max_step=10``) or a value of the wrong type (``trainer.max_steps=abc``)
fails when the config is composed, with Hydra's own message, before any data is
loaded. Values live in the YAML files; ``MISSING`` here means "the YAML must set
it". The groups that depend on the paper type declare their keys next to the code
that reads them: ``DataConfig`` in data.py, ``ModelConfig`` in model.py,
``LossConfig`` in loss.py.

To add a key: add it here (or to that dataclass) and to the YAML file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from ..data import DataConfig
from ..loss import HEADLINE_MODE, LossConfig
from ..model import ModelConfig

CONFIG_DIR = Path(__file__).parent  # the YAML files beside this one


class Precision(Enum):
    fp32 = "fp32"
    bf16 = "bf16"  # bfloat16 autocast for forward and loss; weights stay float32


class TestCheckpoint(Enum):
    last = "last"  # the run as it ended
    best = "best"  # the best validation headline (early stopping, chosen on validation)


class OptimName(Enum):
    adamw = "adamw"
    adam = "adam"
    sgd = "sgd"
    rmsprop = "rmsprop"


class ScheduleName(Enum):
    constant = "constant"
    cosine = "cosine"
    linear = "linear"
    step = "step"
    inverse_sqrt = "inverse_sqrt"


@dataclass
class OptimConfig:
    """configs/optim/*.yaml. The keys after grad_clip belong to some optimisers
    only (engine/optim.py: OPTIMISER_KEYS); one set for another optimiser is an error."""

    name: OptimName = MISSING
    lr: float = MISSING  # the peak LR: the schedule is a factor on it
    weight_decay: float = MISSING
    grad_clip: float | None = MISSING  # max global gradient norm; None: no clipping
    betas: list[float] | None = None
    eps: float | None = None
    momentum: float | None = None
    nesterov: bool | None = None
    alpha: float | None = None
    centered: bool | None = None


@dataclass
class ScheduleConfig:
    """configs/schedule/*.yaml (engine/optim.py: lr_factor has the formulas)."""

    name: ScheduleName = MISSING
    warmup_steps: int = 0
    min_lr_ratio: float | None = None  # cosine, linear
    step_size: int | None = None  # step
    gamma: float | None = None  # step


@dataclass
class OptimOverride:
    """A player's own optim keys (configs/players/): null takes the optim group's."""

    name: OptimName | None = None
    lr: float | None = None
    weight_decay: float | None = None
    grad_clip: float | None = None
    betas: list[float] | None = None
    eps: float | None = None
    momentum: float | None = None
    nesterov: bool | None = None
    alpha: float | None = None
    centered: bool | None = None


@dataclass
class ScheduleOverride:
    """A player's own schedule keys: null takes the schedule group's."""

    name: ScheduleName | None = None
    warmup_steps: int | None = None
    min_lr_ratio: float | None = None
    step_size: int | None = None
    gamma: float | None = None


@dataclass
class PlayerConfig:
    """configs/players/*.yaml, one entry per player loss.PLAYERS declares
    (engine/players.py). A paper with one player has none of this."""

    steps: int = 1  # updates per iteration (trainer.max_steps counts iterations)
    optim: OptimOverride = field(default_factory=OptimOverride)
    schedule: ScheduleOverride = field(default_factory=ScheduleOverride)


@dataclass
class TrainerConfig:
    # Set per paper type in configs/trainer/default.yaml.
    max_steps: int = MISSING
    batch_size: int = MISSING  # the global batch: split across processes under torchrun
    log_every: int = MISSING
    eval_every: int = MISSING  # validation, then checkpoints/last.pt (and best.pt)
    eval_batch_size: int = MISSING
    eval_num_workers: int = 0  # DataLoader workers reading a split that is a Dataset
    # The paper's recipe; documented in the README's "Training recipe" section.
    grad_accum_steps: int = 1  # micro-batches per update: batch_size stays the paper's
    ema_decay: float | None = None  # e.g. 0.9999: evaluate an average of the weights
    # Which checkpoint reports the test split (sweeps, eval ckpt_path=latest, report):
    # last, or best where the paper's protocol keeps the best validated policy.
    test_checkpoint: TestCheckpoint = TestCheckpoint.last
    # The same for every paper type; documented in the README's "Long runs" section.
    resume: bool = False  # continue from <run dir>/checkpoints/last.pt when it exists
    deterministic: bool = False  # deterministic kernels (bit-exact repeats on GPU too)
    detect_anomaly: bool = False  # autograd anomaly mode: slow, names the op making NaNs
    # Steps between NaN/inf checks. None (or 0): every step on the CPU (free there)
    # and every log_every steps on a GPU, where each check waits for the GPU.
    check_finite_every: int | None = None
    precision: Precision = Precision.fp32
    compile: bool = False  # torch.compile the model for training steps
    tensorboard: bool = True  # also log to <run dir>/tensorboard when it is installed
    plot: bool = True  # training_curves.png at the end (matplotlib: ~0.5 s)
    num_threads: int | None = None  # CPU threads; None: the idle cores (engine/runtime.py)
    stall_warning_seconds: float | None = 600.0  # warn when no batch comes this long


@dataclass
class ChecksConfig:
    # What the sanity checks (tests/, the gauntlet) ask of the method; never how it
    # trains. Raise a budget in the experiment that makes the model bigger, where
    # memorising takes longer, rather than in the tests.
    overfit_1: int = 200  # steps allowed to memorise 1 example
    overfit_10: int = 600
    overfit_100: int = 3000


@dataclass
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    # Empty for a paper whose loss.py declares no PLAYERS: one player, the whole model.
    players: dict[str, PlayerConfig] = field(default_factory=dict)
    checks: ChecksConfig = field(default_factory=ChecksConfig)
    seed: int = MISSING
    device: str = MISSING


@dataclass
class EvalConfig:
    ckpt_path: str = MISSING
    split: str = "test"
    batch_size: int = 512
    device: str = "auto"
    output: str | None = None


def register() -> None:
    """Make the schemas known to Hydra as ``train_schema`` and ``eval_schema``
    (the first entries of the defaults lists in configs/train.yaml and eval.yaml)."""
    store = ConfigStore.instance()
    store.store(name="train_schema", node=TrainConfig)
    store.store(name="eval_schema", node=EvalConfig)
    # ${headline_direction:} in configs/sweep/optuna.yaml: which way the objective goes.
    OmegaConf.register_new_resolver(
        "headline_direction",
        lambda: "maximize" if HEADLINE_MODE == "max" else "minimize",
        replace=True,
    )


def compose_config(*overrides: str, config_name: str = "train"):
    """The config ``python -m {{ cookiecutter.package_name }}.train <overrides>`` would get,
    composed without starting a Hydra app (the tests, the gauntlet, the benchmarks).
    A bad override raises hydra.errors.ConfigCompositionException."""
    from hydra import compose, initialize_config_dir

    register()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name=config_name, overrides=list(overrides))
