"""Speed switches (bf16 autocast, torch.compile, CPU threads) and data-parallel training."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

import {{ cookiecutter.package_name }}.train as train_module
from {{ cookiecutter.package_name }}.configs.schema import (
    compose_config,
)
from {{ cookiecutter.package_name }}.engine.batches import (
    named_tensors,
)
from {{ cookiecutter.package_name }}.engine.ckpt import (
    load_checkpoint,
)
from {{ cookiecutter.package_name }}.engine.runtime import (
    Distributed,
    pick_num_threads,
    plain,
    shard,
)


@pytest.mark.parametrize(
    ("cores", "load", "processes", "torch_default", "expected"),
    [
        (8, 0.0, 1, 8, 8),  # idle: torch's own default, a thread per core
        (8, 6.2, 1, 8, 2),  # six cores busy: the two left
        (2, 2.0, 1, 2, 1),  # every core busy: still one thread
        (8, 0.0, 4, 8, 2),  # torchrun, four processes on this machine: a quarter each
        (8, 7.6, 4, 8, 1),
        (8, 0.0, 1, 4, 4),  # never more than torch's default
    ],
)
def test_automatic_cpu_threads_take_the_cores_left_idle(
    monkeypatch, cores, load, processes, torch_default, expected
):
    # A thread per core on a busy machine makes a small model 10-20x slower (README,
    # CPU threads): trainer.num_threads=null takes what the load average leaves idle.
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setattr(torch, "get_num_threads", lambda: torch_default)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(processes))
    assert pick_num_threads(None, Distributed())[0] == expected
    assert pick_num_threads(3, Distributed())[0] == 3  # a number is used as is


@pytest.mark.parametrize(("cores", "workers", "expected"), [(8, 2, 6), (2, 2, 1), (2, 1, 1)])
def test_automatic_cpu_threads_leave_a_core_to_each_data_worker(
    monkeypatch, cores, workers, expected
):
    # DataLoader workers decode while the model computes: on 2 cores, 2 workers and
    # 2 threads trained the vision example 1.7x slower than 1 thread did.
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    monkeypatch.setattr(torch, "get_num_threads", lambda: cores)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    assert pick_num_threads(None, Distributed(), data_workers=workers)[0] == expected


def test_importing_the_package_takes_torchs_objects_out_of_the_collectors_reach():
    # __init__.py freezes what `import torch` leaves behind: the cyclic garbage
    # collector then no longer walks those ~250k objects in every full collection
    # and at shutdown (about a third of a 1-step run's time), and still collects
    # everything created after. A fresh interpreter, as `python -m <package>.train`
    # starts: here pytest imported torch before the package.
    probe = """
import gc, importlib
import {{ cookiecutter.package_name }} as package  # first, as in `python -m`
import torch
unfrozen = {id(obj) for obj in gc.get_objects()}  # gc.freeze() moved the rest out
print("frozen" if id(torch.nn.Module) not in unfrozen else "unfrozen")
print("collecting" if gc.isenabled() else "off")
gc.disable()  # a program that turned collection off keeps it off
importlib.reload(package)
print("collecting" if gc.isenabled() else "off")
"""
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.split() == ["frozen", "collecting", "off"]


def final_weights(run_dir) -> dict[str, torch.Tensor]:
    return load_checkpoint(run_dir / "checkpoints" / "last.pt")["model"]


def max_difference(a: dict, b: dict, names=None) -> float:
    return max((a[name].float() - b[name].float()).abs().max().item() for name in names or a)


@pytest.mark.slow  # trainer.precision is fp32 unless a run asks for bf16
def test_bf16_autocast_trains_close_to_float32(quick_cfg, quick_run, tmp_path):
    train_module.train(quick_cfg("trainer.precision=bf16"), tmp_path)
    fp32, bf16 = final_weights(quick_run), final_weights(tmp_path)
    floats = [w for w in bf16.values() if w.is_floating_point()]
    assert all(w.dtype == torch.float32 for w in floats), "weights must stay float32"
    difference = max_difference(fp32, bf16)
    # Different (bf16 has 8 bits of mantissa: autocast was on) but the same training.
    assert 0 < difference < 0.05, difference


@pytest.mark.slow
@pytest.mark.skipif(
    sys.platform == "win32" or not (shutil.which("cc") or shutil.which("gcc")),
    reason="torch.compile on CPU needs a C compiler",
)
def test_torch_compile_trains_like_eager(quick_cfg, quick_run, tmp_path):
    train_module.train(quick_cfg("trainer.compile=true"), tmp_path)
    difference = max_difference(final_weights(quick_run), final_weights(tmp_path))
    # Fused kernels round differently; the training itself must be the same.
    assert difference < 1e-3, difference


@pytest.mark.slow
def test_two_process_data_parallel_run_matches_one_process(tmp_path, run_train_command):
    """torchrun on CPU (gloo): one run directory, identical weights on both ranks,
    and the same result as one process with the same global batch. The two
    processes accumulate each share over two micro-batches (when the batch splits
    into four equal parts), so gradients are averaged across processes only after
    the last one (no_sync): syncing none would leave the ranks apart."""
    steps = [
        "experiment=tiny",
        "trainer.max_steps=12",
        "trainer.eval_every=6",
        "trainer.tensorboard=false",
        "trainer.plot=false",
    ]
    module = ["-m", "{{ cookiecutter.package_name }}.train"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = tmp_path / "single"
    run_train_command(*steps, f"hydra.run.dir={single}")
    tiny = compose_config("experiment=tiny")
    steps.append(f"trainer.grad_accum_steps={2 if tiny.trainer.batch_size % 4 == 0 else 1}")
    # The default run dir (runs/<date>/<launcher run id>) must be one dir for both ranks.
    workdir = tmp_path / "ddp"
    workdir.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         *module, *steps],
        capture_output=True, text=True, timeout=600, env=env, cwd=workdir,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    run_dirs = [p.parent for p in (workdir / "runs").glob("*/*/metrics.json")]
    assert len(list((workdir / "runs").glob("*/*"))) == 1 and len(run_dirs) == 1
    final = json.loads((run_dirs[0] / "metrics.json").read_text())
    assert final["world_size"] == 2 and final["ranks_agree"] is True
    # The same global batches; not bit-equal to one process: gradients are summed in
    # another order, batch norm sees each process's half, sampled noise differs.
    # Parameters only: batch norm's running statistics follow the micro-batches,
    # which accumulation makes smaller.
    model = train_module.build_model(tiny.model, train_module.spec(plain(tiny.data)))
    names = [name for name, _ in model.named_parameters()]
    assert max_difference(final_weights(single), final_weights(run_dirs[0]), names) < 0.05


def test_each_process_takes_an_equal_disjoint_share_of_the_batch():
    # A dict of inputs (x_t and its time step) is shared out like every other tensor.
    inputs = {"x": torch.arange(32).view(16, 2), "t": torch.arange(16)}
    batch = {"inputs": inputs, "targets": torch.arange(16)}
    world = 4
    shares = [shard(batch, Distributed(rank, world, rank)) for rank in range(world)]
    for name, tensor in named_tensors(batch).items():
        parts = [named_tensors(share)[name] for share in shares]
        assert len({len(part) for part in parts}) == 1, "unequal shares bias the mean"
        # Together the shares are the batch, each example exactly once.
        rebuilt = torch.stack(parts, dim=1).flatten(0, 1)
        assert torch.equal(rebuilt, tensor)
