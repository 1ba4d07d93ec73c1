"""The prewired tests run at test scale (the baked conftest's TEST_SCALE:
experiment=tiny), not at the default config's: a project whose default model is ten
times the example's runs the same default suite, and no test in it runs a model of
the default's size. Both suites' times are printed (figures, not a timed test)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest
from conftest import bake_ok

pytestmark = pytest.mark.slow
PKG = "attention_is_all_you_need"

# A pytest plugin for the baked suite: the parameter count of every module that runs
# a forward pass, the largest written to $SCALE_PROBE_OUT at the end.
PROBE = """
import os
import torch

largest = [0]
seen = set()

def record(module, args):
    if id(module) not in seen:
        seen.add(id(module))
        largest[0] = max(largest[0], sum(p.numel() for p in module.parameters()))

handle = torch.nn.modules.module.register_module_forward_pre_hook(record)

def pytest_sessionfinish(session, exitstatus):
    with open(os.environ["SCALE_PROBE_OUT"], "w") as f:
        f.write(str(largest[0]))
"""

# The example's model is d_model 64 in 2 layers; 128 in 5 has 10x its weights.
TEN_TIMES = {"d_model": "128", "n_layers": "5"}


def default_suite(project, probe_dir) -> tuple[float, int, str]:
    """Run the baked default suite with the probe: (seconds, largest model, summary)."""
    out = probe_dir / "largest.txt"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(project / "src"), str(probe_dir)]),
        "OMP_NUM_THREADS": "1",
        "SCALE_PROBE_OUT": str(out),
    }
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "scale_probe"]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=900, env=env)
    seconds = time.perf_counter() - start
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return seconds, int(out.read_text()), summary


def model_size(project, *overrides: str) -> int:
    """Parameters of the model the config (with ``overrides``) builds."""
    code = (
        f"from {PKG}.configs.schema import compose_config\n"
        f"from {PKG}.data import spec\n"
        f"from {PKG}.model import build_model\n"
        f"cfg = compose_config(*{list(overrides)!r})\n"
        "print(sum(p.numel() for p in build_model(cfg.model, spec(cfg.data)).parameters()))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(project / "src")}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=project, capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return int(result.stdout.split()[-1])


def test_a_ten_times_larger_default_model_leaves_the_default_suite_as_it_was(cookies, tmp_path):
    project = bake_ok(cookies)
    (tmp_path / "scale_probe.py").write_text(PROBE)
    example = model_size(project)
    before_seconds, before_largest, before_summary = default_suite(project, tmp_path)

    model_yaml = project / "src" / PKG / "configs" / "model" / "transformer.yaml"
    text = model_yaml.read_text()
    for key, value in TEN_TIMES.items():
        text, found = re.subn(rf"^{key}: \d+", f"{key}: {value}", text, flags=re.M)
        assert found == 1, f"model/transformer.yaml has no '{key}: ...'"
    model_yaml.write_text(text)
    paper_size = model_size(project)
    assert paper_size >= 9 * example, (paper_size, example)
    after_seconds, after_largest, after_summary = default_suite(project, tmp_path)

    print(
        f"\ndefault suite: {before_seconds:.1f} s with the example's model ({example} "
        f"parameters), {after_seconds:.1f} s with one of {paper_size}; largest model run "
        f"in the suite: {before_largest} and {after_largest} parameters"
    )
    assert after_summary.split(" in ")[0] == before_summary.split(" in ")[0]
    # No test ran the default model: the largest one run is the same in both suites,
    # and smaller than the default's.
    assert after_largest == before_largest < example
