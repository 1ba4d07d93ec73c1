"""The gauntlet command: passes on the example, fails (and says why) on a broken one."""

from __future__ import annotations

import json

import pytest

import {{ cookiecutter.package_name }}.gauntlet as gauntlet


def test_a_sign_flipped_loss_fails_the_gauntlet_with_hints(quick_cfg, tmp_path, monkeypatch):
    # The classic bug: minimising the negative of the loss.
    real = gauntlet.loss_fn
    monkeypatch.setattr(gauntlet, "loss_fn", lambda *args: -real(*args))
    skip = {"input baseline", "LR range"}  # the LR range cannot see it: -loss does fall
    checks = {c.name: c for c in gauntlet.run_gauntlet(quick_cfg(), tmp_path, (1,), skip)}
    for name in ("overfit 1", "loss at init"):
        assert not checks[name].passed, name
    report = (tmp_path / "gauntlet.md").read_text()
    assert "| overfit 1 | FAIL |" in report and "sign flip" in report


@pytest.mark.slow
def test_a_model_that_ignores_its_input_fails_the_input_baseline(cfg, tmp_path, monkeypatch):
    real_build = gauntlet.build_model

    def blind_model(*args):
        model = real_build(*args)
        model.register_forward_pre_hook(lambda module, args: (args[0] * 0,))
        return model

    monkeypatch.setattr(gauntlet, "build_model", blind_model)
    checks = {c.name: c for c in gauntlet.run_gauntlet(cfg, tmp_path, sizes=(), skip={"LR range"})}
    assert not checks["input baseline"].passed


@pytest.mark.slow
def test_the_gauntlet_command_passes_on_the_example(tmp_path, capsys):
    # Overfitting 100 examples is test_overfit's; this is the rest of the gauntlet.
    gauntlet.main(["--out", str(tmp_path), "--sizes", "1", "10"])  # exit 1 on a failure
    checks = json.loads((tmp_path / "gauntlet.json").read_text())
    assert len(checks) == 8 and all(c["passed"] for c in checks)
    assert "| overfit 10 | pass |" in capsys.readouterr().out
    for picture in ("overfit.png", "lr_range.png"):
        assert (tmp_path / picture).stat().st_size > 1000


def test_the_gauntlet_command_rejects_a_bad_override():
    with pytest.raises(SystemExit) as exit_:
        gauntlet.main(["optim.lrr=1"])
    message = str(exit_.value.code)
    assert message.startswith("error: ") and "lrr" in message and "\n" not in message
