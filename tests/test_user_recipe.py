"""The default suite checks the user's recipe, not the template's: switch a baked
project's defaults to SGD with step decay after a warm-up, gradient accumulation over
2 micro-batches and a weight average, and its whole default suite passes while
replaying exactly that recipe against torch.optim and the formulas."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from conftest import bake_ok

pytestmark = pytest.mark.slow
PKG = "attention_is_all_you_need"


def test_the_default_suite_replays_the_recipe_the_config_selects(cookies):
    project = bake_ok(cookies)
    configs = project / "src" / PKG / "configs"
    train_yaml = configs / "train.yaml"
    text = train_yaml.read_text()
    for group, choice in (("optim", "sgd"), ("schedule", "step")):
        text, found = re.subn(rf"^  - {group}: \S+", f"  - {group}: {choice}", text, flags=re.M)
        assert found == 1, f"train.yaml has no '- {group}: ...' default"
    train_yaml.write_text(text)
    # Step decay after a gradual warm-up, as in Goyal et al. (2017)'s large-batch SGD.
    step = configs / "schedule" / "step.yaml"
    text, found = re.subn(r"^warmup_steps: 0$", "warmup_steps: 50", step.read_text(), flags=re.M)
    assert found == 1, "schedule/step.yaml has no 'warmup_steps: 0'"
    step.write_text(text)
    with open(configs / "trainer" / "default.yaml", "a", encoding="utf-8") as f:
        f.write("grad_accum_steps: 2\nema_decay: 0.99\n")

    env = {**os.environ, "PYTHONPATH": str(project / "src"), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider"]
    result = subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    test = "test_the_loop_updates_the_weights_as_the_configured_recipe"
    replayed = f"{test}[sgd, step, accumulation 2, EMA 0.99] PASSED"
    assert replayed in result.stdout, result.stdout[-4000:]
