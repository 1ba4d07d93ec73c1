"""Run-time plumbing shared by every paper type: seeds and random states, device,
determinism, CPU threads and the few lines that data-parallel training needs."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import torch
import torch.distributed as dist
from omegaconf import OmegaConf

from .batches import map_tensors


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and PyTorch; return a generator for the data order.

    Any integer is a valid seed, 0 included: never write ``if seed:``.
    The data order gets its own generator so that adding a random op to the model
    does not silently reshuffle the batches.
    """
    random.seed(seed)
    # The legacy global NumPy RNG: still what much third-party code draws from.
    np.random.seed(seed)  # noqa: NPY002
    torch.manual_seed(seed)  # seeds CUDA and MPS too
    return torch.Generator().manual_seed(seed)


def rng_states(data_generator: torch.Generator) -> dict:
    """Every random state a training run draws from, as plain data and tensors
    (what a ``weights_only`` checkpoint may hold)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002
    states = {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
        "data": data_generator.get_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict, data_generator: torch.Generator) -> None:
    """Put back what ``rng_states`` saved, so the run continues as if never stopped."""
    random.setstate(_as_tuples(states["python"]))
    kind, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))  # noqa: NPY002
    torch.set_rng_state(states["torch"])
    data_generator.set_state(states["data"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _as_tuples(value):
    # random.setstate wants the nested tuples back that getstate gave.
    return tuple(_as_tuples(v) for v in value) if isinstance(value, list | tuple) else value


def plain(node) -> SimpleNamespace:
    """A config group as a plain object, for code that reads it every step: an
    OmegaConf attribute read costs microseconds (type checks, interpolation), which
    on a small model adds up to a tenth of the step time."""
    return SimpleNamespace(**OmegaConf.to_container(node, resolve=True, enum_to_str=True))


def make_deterministic(on: bool) -> None:
    """Deterministic kernels where PyTorch has them, an error where it has none.

    On CPU, training with a fixed seed is already bit-for-bit repeatable; on GPU,
    some kernels (atomics in scatter/index_add, cuDNN autotuning) are not.
    """
    if on:
        # cuBLAS needs a fixed workspace to be deterministic; set before first use.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    # Only when it changes: the call imports torch._inductor (a second at start-up).
    if on != torch.are_deterministic_algorithms_enabled():
        torch.use_deterministic_algorithms(on)
    torch.backends.cudnn.benchmark = not on
    torch.backends.cudnn.deterministic = on


def pick_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto`` picks CUDA (this process's GPU under data parallelism), then Apple's
    MPS, then the CPU; anything else is used as is."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


# --- Data parallelism (torchrun) ---------------------------------------------------


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that evaluates, logs and writes files."""
        return self.rank == 0


def init_distributed(device_name: str = "auto") -> Distributed:
    """Join the process group that ``torchrun`` set up; a plain run is world size 1.

    torchrun passes RANK, WORLD_SIZE and LOCAL_RANK in the environment; under the
    SLURM launcher (configs/hydra/launcher/slurm.yaml) with several tasks, submitit
    knows them and exports them here. Processes talk over NCCL between GPUs and
    over gloo otherwise (CPU-only machines).
    """
    if "WORLD_SIZE" not in os.environ and int(os.environ.get("SLURM_NTASKS", "1")) > 1:
        import submitit  # only reachable through hydra/launcher=slurm (the slurm extra)

        submitit.helpers.TorchDistributedEnvironment().export()
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Distributed()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    use_nccl = torch.cuda.is_available() and device_name in ("auto", "cuda")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_nccl else "gloo")
    return Distributed(rank, world_size, local_rank)


def leave_distributed(ddp: Distributed) -> None:
    """Close the process group once every process has reached this point.

    The barrier means no process is still inside a collective when another one
    closes its connections. Call it after dropping every other reference to the
    group (the DistributedDataParallel wrapper holds one): gloo's worker threads are
    then stopped here, in order, rather than whenever the garbage collector reaches
    the wrapper, which can be during interpreter exit.
    """
    if ddp.world_size == 1:
        return
    dist.barrier()
    dist.destroy_process_group()


def shard(batch: dict, ddp: Distributed) -> dict:
    """This rank's share of a global batch: every rank draws the same global batch
    (same seed, same generator) and keeps every world_size-th example from its rank.
    The gradient all-reduce then averages per-rank means into the global mean.

    Exact when the batch divides evenly. A batch of RL transitions does not always
    (episodes differ in length): shares then differ by one transition, and every
    rank plays all the episodes of the batch before taking its share.
    """
    if ddp.world_size == 1:
        return batch
    return map_tensors(lambda tensor: tensor[ddp.rank :: ddp.world_size], batch)


def ranks_agree(model: torch.nn.Module, ddp: Distributed) -> bool:
    """True when every rank holds the same weights (bit for bit): each rank sends a
    fingerprint (per-parameter sum and sum of squares, in float64) to all others."""
    if ddp.world_size == 1:
        return True
    params = [p.detach().double() for p in model.parameters()]
    mine = torch.stack([torch.stack([p.sum(), p.pow(2).sum()]) for p in params]).cpu()
    everyone = [torch.empty_like(mine) for _ in range(ddp.world_size)]
    dist.all_gather_object(everyone, mine)
    return all(torch.equal(mine, other) for other in everyone)


def pick_num_threads(
    requested: int | None, ddp: Distributed, data_workers: int = 0
) -> tuple[int, str]:
    """CPU threads for torch's operators, and why (for the log).

    torch uses one thread per physical core by default. On a machine that is busy
    (other runs, a sweep, a browser), those threads wait on each other: a small
    model then trains 10-20x slower than with one thread. ``None`` (auto) takes
    the cores left idle by what already runs (the 1-minute load average), split
    between this machine's processes under torchrun, less the DataLoader workers
    each process starts (``data_workers``: they decode while the model computes;
    the vision example, 2 workers on 2 cores, trained in 12.7 s with 1 thread and
    21.4 s with 2), at least 1 and at most torch's default. A number is used as is.
    """
    if requested:
        return requested, "trainer.num_threads"
    default = torch.get_num_threads()
    per_machine = int(os.environ.get("LOCAL_WORLD_SIZE", ddp.world_size))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    idle = int(max(cores - load, 0) + 0.5) // per_machine - data_workers
    threads = min(max(idle, 1), default)
    workers = f", {data_workers} data worker(s) each" if data_workers else ""
    return threads, f"auto: {cores} cores, load {load:.1f}, {per_machine} process(es){workers}"
