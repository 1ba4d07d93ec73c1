"""What a training run writes as it goes: metrics.jsonl (and TensorBoard), the
console's one-line metric summaries, a warning when the data stops coming, and
which of its checkpoints reports the test split.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)


class MetricsLog:
    """metrics.jsonl (one JSON object per line, flushed as written, so it can be read
    mid-run) and, when the tensorboard package is installed, the same scalars for
    TensorBoard (``tensorboard --logdir runs``)."""

    def __init__(self, run_dir: Path, resume_after: int | None, tensorboard: bool):
        self.path = run_dir / "metrics.jsonl"
        if resume_after is None:
            # A fresh run in an existing directory replaces its log, as it
            # replaces metrics.json and the checkpoints.
            self.path.write_text("")
        else:
            # Resumed: forget what was logged after the checkpoint; it is redone.
            kept = [r for r in read_jsonl(self.path) if r["step"] <= resume_after]
            self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))
        self.file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())
        self.tensorboard = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # optional: pip install -e ".[tensorboard]"
                pass
            else:
                self.tensorboard = SummaryWriter(run_dir / "tensorboard", purge_step=resume_after)

    def write(self, record: dict) -> None:
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        if self.tensorboard is not None:
            for name, value in record.items():
                if name != "step":
                    self.tensorboard.add_scalar(name, value, record["step"])

    def close(self) -> None:
        self.file.close()
        if self.tensorboard is not None:
            self.tensorboard.close()


def read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class StallWatch:
    """Logs a warning when the data iterator has not delivered a batch for
    ``seconds`` (a hung environment, a dead network mount, a deadlocked worker),
    naming the iterator; the run goes on waiting. A background thread looks every
    few seconds at when the loop started waiting; the loop pays two assignments."""

    def __init__(self, batches: Iterator[dict], seconds: float):
        self.seconds = seconds
        # A generator names its function; an iterator object its class.
        self.name = getattr(batches, "__qualname__", type(batches).__qualname__)
        self.waiting_since: float | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="stall-watch", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        warned_about = None
        while not self._stopped.wait(min(max(self.seconds / 4, 0.05), 10.0)):
            since = self.waiting_since
            if since is None or since == warned_about:
                continue
            waited = time.perf_counter() - since
            if waited > self.seconds:
                log.warning(
                    "no training batch from the data iterator %s for %.0f s; still "
                    "waiting (a hung environment or data source? "
                    "trainer.stall_warning_seconds sets this warning)",
                    self.name, waited,
                )  # fmt: skip
                warned_about = since

    def stop(self) -> None:
        """Ends the thread now, so that none is left running at interpreter exit."""
        self._stopped.set()
        self._thread.join()


def prefixed(split: str, metrics: dict[str, float]) -> dict[str, float]:
    """{"loss": 0.1} -> {"val/loss": 0.1}: the names used in the logs and metrics.json."""
    return {f"{split}/{name}": value for name, value in metrics.items()}


def format_metrics(metrics: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.4f}" for k, v in metrics.items())


def quiet_unless_rank_zero() -> None:
    # Under torchrun every process runs Hydra's logging setup; only rank 0 keeps
    # the run's log file (and prints progress), the others report warnings only.
    if int(os.environ.get("RANK", "0")) != 0:
        root = logging.getLogger()
        for handler in list(root.handlers):
            if isinstance(handler, logging.FileHandler):
                root.removeHandler(handler)
        root.setLevel(logging.WARNING)


def reported_checkpoint(run_dir: str | Path) -> Path:
    """The checkpoint a run reports its test numbers from: ``checkpoints/best.pt``
    when its config says ``trainer.test_checkpoint=best`` (the weights of its best
    validation, chosen on validation and never on test), else ``checkpoints/last.pt``
    (the run as it ended; also for a run that has not finished). train.py records the
    choice in metrics.json when the run ends."""
    run_dir = Path(run_dir)
    final = run_dir / "metrics.json"
    choice = (
        json.loads(final.read_text()).get("test_checkpoint", "last") if final.is_file() else "last"
    )
    return run_dir / "checkpoints" / f"{choice}.pt"


def is_train_loss(key: str) -> bool:
    """train/loss, or a player's train/<player>/loss (engine/players.py)."""
    return key == "train/loss" or (key.startswith("train/") and key.endswith("/loss"))


def first_train_loss(records: list[dict]) -> str:
    """The key of the training loss a summary shows: train/loss, or with players
    the loss of the player that steps first."""
    return next((k for r in records for k in r if is_train_loss(k)), "train/loss")
