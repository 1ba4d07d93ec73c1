"""Baking: the default project's exact contents, derived names, licenses, re-runs."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from conftest import PAPER_TYPES, TEMPLATE, bake_ok, cookiecutter_cli, project_files

PKG = "attention_is_all_you_need"
SHARED_FILES = {
    ".gitignore",
    ".gitattributes",
    ".pre-commit-config.yaml",
    ".github/workflows/ci.yml",
    "LICENSE",
    "README.md",
    "PAPER.md",
    "CHECKPOINTS.md",
    "JOURNAL.md",
    "pyproject.toml",
    "reference_numbers.yaml",
    f"src/{PKG}/__init__.py",
    f"src/{PKG}/data.py",
    f"src/{PKG}/model.py",
    f"src/{PKG}/loss.py",
    f"src/{PKG}/train.py",
    f"src/{PKG}/eval.py",
    f"src/{PKG}/engine/__init__.py",
    f"src/{PKG}/engine/batches.py",
    f"src/{PKG}/engine/optim.py",
    f"src/{PKG}/engine/runtime.py",
    f"src/{PKG}/engine/ckpt.py",
    f"src/{PKG}/engine/guards.py",
    f"src/{PKG}/engine/loader.py",
    f"src/{PKG}/engine/tokens.py",
    f"src/{PKG}/engine/players.py",
    f"src/{PKG}/engine/run_log.py",
    f"src/{PKG}/engine/stats.py",
    f"src/{PKG}/engine/plots.py",
    f"src/{PKG}/judge/__init__.py",
    f"src/{PKG}/judge/gauntlet.py",
    f"src/{PKG}/judge/diagnostics.py",
    f"src/{PKG}/judge/data_checks.py",
    f"src/{PKG}/judge/player_steps.py",
    f"src/{PKG}/judge/sweeps.py",
    f"src/{PKG}/judge/runs.py",
    f"src/{PKG}/judge/compare.py",
    f"src/{PKG}/judge/report.py",
    f"src/{PKG}/judge/checkpoints.py",
    f"src/{PKG}/configs/__init__.py",
    f"src/{PKG}/configs/schema.py",
    f"src/{PKG}/configs/train.yaml",
    f"src/{PKG}/configs/eval.yaml",
    f"src/{PKG}/configs/optim/adamw.yaml",
    f"src/{PKG}/configs/optim/adam.yaml",
    f"src/{PKG}/configs/optim/sgd.yaml",
    f"src/{PKG}/configs/optim/rmsprop.yaml",
    f"src/{PKG}/configs/schedule/constant.yaml",
    f"src/{PKG}/configs/schedule/cosine.yaml",
    f"src/{PKG}/configs/schedule/linear.yaml",
    f"src/{PKG}/configs/schedule/step.yaml",
    f"src/{PKG}/configs/schedule/inverse_sqrt.yaml",
    f"src/{PKG}/configs/experiment/reference.yaml",
    f"src/{PKG}/configs/experiment/tiny.yaml",
    f"src/{PKG}/configs/sweep/lr.yaml",
    f"src/{PKG}/configs/sweep/ablation.yaml",
    f"src/{PKG}/configs/sweep/seeds.yaml",
    f"src/{PKG}/configs/sweep/optuna.yaml",
    f"src/{PKG}/configs/ablation/none.yaml",
    f"src/{PKG}/configs/hydra/launcher/slurm.yaml",
    f"src/{PKG}/configs/hydra/launcher/local.yaml",
    "tests/conftest.py",
    "tests/test_data.py",
    "tests/test_model.py",
    "tests/test_loss.py",
    "tests/test_gradients.py",
    "tests/test_generation.py",
    "tests/test_init.py",
    "tests/test_loader.py",
    "tests/test_tokens.py",
    "tests/test_overfit.py",
    "tests/test_end_to_end.py",
    "tests/test_from_scratch.py",
    "tests/test_compare.py",
    "tests/test_report.py",
    "tests/test_checkpoints.py",
    "tests/test_resume.py",
    "tests/test_guards.py",
    "tests/test_speed_and_scale.py",
    "tests/test_sweeps.py",
    "tests/test_gauntlet.py",
    "tests/test_optim.py",
    "tests/test_loop.py",
    "tests/test_recipe.py",
    "tests/test_data_path.py",
    "benchmarks/bench.py",
}
# Shared files a paper type replaces with its own version, and why (none so far:
# where a type differs, the shared code calls a function of its data/model/loss).
REPLACED_SHARED_FILES: dict[str, set[str]] = {}
# What each paper type adds: its data, model and trainer configs and its pitfall tests.
TYPE_FILES = {
    "transformer": {
        f"src/{PKG}/configs/loss/cross_entropy.yaml",
        f"src/{PKG}/configs/ablation/no_positional_encoding.yaml",
        f"src/{PKG}/configs/ablation/no_residual.yaml",
        f"src/{PKG}/configs/ablation/no_warmup.yaml",
        f"src/{PKG}/configs/data/reversal.yaml",
        f"src/{PKG}/configs/trainer/default.yaml",
        f"src/{PKG}/configs/model/transformer.yaml",
        "tests/test_transformer_pitfalls.py",
        "tests/write_yourself.txt",
    },
    "vision": {
        f"src/{PKG}/configs/loss/cross_entropy.yaml",
        f"src/{PKG}/configs/ablation/no_augmentation.yaml",
        f"src/{PKG}/configs/ablation/no_normalization.yaml",
        f"src/{PKG}/configs/ablation/one_stage.yaml",
        f"src/{PKG}/configs/data/digits.yaml",
        f"src/{PKG}/configs/trainer/default.yaml",
        f"src/{PKG}/configs/model/cnn.yaml",
        "tests/test_vision_pitfalls.py",
        "tests/write_yourself.txt",
    },
    "generative": {
        f"src/{PKG}/configs/loss/elbo.yaml",
        f"src/{PKG}/configs/ablation/no_kl.yaml",
        f"src/{PKG}/configs/ablation/strong_kl.yaml",
        f"src/{PKG}/configs/data/binary_digits.yaml",
        f"src/{PKG}/configs/trainer/default.yaml",
        f"src/{PKG}/configs/model/vae.yaml",
        "tests/test_generative_pitfalls.py",
        "tests/write_yourself.txt",
    },
    "rl": {
        f"src/{PKG}/configs/loss/actor_critic.yaml",
        f"src/{PKG}/configs/ablation/no_baseline.yaml",
        f"src/{PKG}/configs/ablation/no_advantage_normalization.yaml",
        f"src/{PKG}/configs/ablation/no_future_rewards.yaml",
        f"src/{PKG}/configs/data/cartpole.yaml",
        f"src/{PKG}/configs/trainer/default.yaml",
        f"src/{PKG}/configs/model/actor_critic.yaml",
        "tests/test_rl_pitfalls.py",
        "tests/write_yourself.txt",
    },
    "rl-value": {
        f"src/{PKG}/configs/loss/td.yaml",
        f"src/{PKG}/configs/ablation/no_target_network.yaml",
        f"src/{PKG}/configs/ablation/no_replay.yaml",
        f"src/{PKG}/configs/ablation/mse_loss.yaml",
        f"src/{PKG}/configs/data/cartpole.yaml",
        f"src/{PKG}/configs/trainer/default.yaml",
        f"src/{PKG}/configs/model/q_network.yaml",
        "tests/test_dqn_pitfalls.py",
        "tests/write_yourself.txt",
    },
    "diffusion": {
        f"src/{PKG}/configs/loss/ddpm.yaml",
        f"src/{PKG}/configs/ablation/few_steps.yaml",
        f"src/{PKG}/configs/ablation/no_time.yaml",
        f"src/{PKG}/configs/ablation/no_ema.yaml",
        f"src/{PKG}/configs/data/digits_ddpm.yaml",
        f"src/{PKG}/configs/trainer/default.yaml",
        f"src/{PKG}/configs/model/denoiser.yaml",
        "tests/test_diffusion_pitfalls.py",
        "tests/write_yourself.txt",
    },
    "gan": {
        f"src/{PKG}/configs/loss/wgan_gp.yaml",
        f"src/{PKG}/configs/ablation/no_penalty.yaml",
        f"src/{PKG}/configs/ablation/one_critic_step.yaml",
        f"src/{PKG}/configs/data/digits_gan.yaml",
        f"src/{PKG}/configs/trainer/default.yaml",
        f"src/{PKG}/configs/model/wgan.yaml",
        f"src/{PKG}/configs/players/wgan_gp.yaml",
        "tests/test_gan_pitfalls.py",
        "tests/write_yourself.txt",
    },
    "lm": {
        f"src/{PKG}/configs/loss/char_nll.yaml",
        f"src/{PKG}/configs/ablation/no_position_embedding.yaml",
        f"src/{PKG}/configs/ablation/untied_head.yaml",
        f"src/{PKG}/configs/ablation/short_context.yaml",
        f"src/{PKG}/configs/data/stdlib_docs.yaml",
        f"src/{PKG}/configs/trainer/default.yaml",
        f"src/{PKG}/configs/model/gpt.yaml",
        "tests/test_lm_pitfalls.py",
        "tests/write_yourself.txt",
    },
}


def test_default_names_are_derived_from_the_title(default_project):
    assert default_project.name == "attention-is-all-you-need"
    assert (default_project / "src" / PKG).is_dir()


def test_every_paper_type_is_listed_here():
    assert set(TYPE_FILES) == set(PAPER_TYPES)
    assert PAPER_TYPES[0] == "transformer"  # the default


@pytest.mark.parametrize("paper_type", PAPER_TYPES)
def test_each_paper_type_bakes_exactly_its_files(cookies, paper_type):
    project = bake_ok(cookies, paper_type=paper_type)
    assert project_files(project) == SHARED_FILES | TYPE_FILES[paper_type]


# The baked package's layers, bottom up: what each may import from the package.
# engine/ knows nothing of the paper; the paper's modules use only each other and
# the batch streams (engine/batches.py, engine/loader.py for files read by workers,
# and a language model's engine/tokens.py);
# the loop builds on both; judge/ may use everything.
PAPER = {"data", "model", "loss"}
STREAMS = {"engine.batches", "engine.loader", "engine.tokens"}
LAYERS = {
    "engine": lambda target: target.startswith("engine."),
    "paper": lambda target: target in PAPER or target in STREAMS,
    "configs": lambda target: target in PAPER or target.startswith("engine."),
    "loop": lambda target: not target.startswith("judge."),
    "judge": lambda target: True,
}


def layer_of(module: str) -> str:
    top = module.split(".")[0]
    if module in PAPER:
        return "paper"
    return {"train": "loop", "eval": "loop"}.get(top, top)


def package_imports(package: Path) -> dict[str, set[str]]:
    """Each module of the package (dotted, from its root) and the package modules it
    imports, anywhere in its body (lazy imports inside functions included)."""
    modules = {
        p.relative_to(package).with_suffix("").as_posix().replace("/", "."): p
        for p in package.rglob("*.py")
        if p.name != "__init__.py"
    }
    graph = {}
    for name, path in modules.items():
        parent = name.split(".")[:-1]
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or node.level == 0:
                continue
            base = parent[: len(parent) - (node.level - 1)]
            target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            # `from . import data_checks` names a module; `from .data import spec` a name.
            candidates = [f"{target}.{a.name}".lstrip(".") for a in node.names] + [target]
            found |= {c for c in candidates if c in modules}
        graph[name] = found - {name}
    return graph


def import_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    done, stack = set(), []

    def visit(module):
        if module in stack:
            return [*stack[stack.index(module) :], module]
        if module in done:
            return None
        stack.append(module)
        for target in sorted(graph[module]):
            if cycle := visit(target):
                return cycle
        stack.pop()
        done.add(module)
        return None

    return next((c for m in sorted(graph) if (c := visit(m))), None)


@pytest.mark.parametrize("paper_type", PAPER_TYPES)
def test_the_package_imports_in_layers_without_cycles(cookies, paper_type):
    graph = package_imports(bake_ok(cookies, paper_type=paper_type) / "src" / PKG)
    assert {"data", "model", "loss", "train", "eval", "engine.batches", "judge.gauntlet"} <= set(graph)
    for module, targets in graph.items():
        allowed = LAYERS[layer_of(module)]
        wrong = sorted(t for t in targets if not allowed(t))
        assert not wrong, f"{module} ({layer_of(module)}) imports {wrong}"
    assert import_cycle(graph) is None, f"import cycle: {' -> '.join(import_cycle(graph))}"


@pytest.mark.parametrize("paper_type", PAPER_TYPES)
def test_each_bundled_example_ships_an_effect_claim(paper_type):
    # The examples' promise (README): at least one ablation's measured effect, which
    # tests/bundled_claims.py --ablations re-checks. A user's paper may make none:
    # the baked project's own tests check only the claims its file has.
    refs = TEMPLATE / "{{cookiecutter.paper_slug}}" / "_paper_types" / paper_type / "reference_numbers.yaml"
    entries = yaml.safe_load(refs.read_text(encoding="utf-8"))
    assert any("ablation" in entry for entry in entries), f"{paper_type}: no effect claim"


def test_no_template_syntax_is_left(default_project):
    for rel in project_files(default_project):
        # GitHub Actions expressions ${{ ... }} are meant to stay.
        text = re.sub(r"\$\{\{.*?\}\}", "", (default_project / rel).read_text(encoding="utf-8"))
        for marker in ("{{", "}}", "{%", "%}", "cookiecutter"):
            assert marker not in rel, f"{marker!r} in file name {rel}"
        for marker in ("{{", "{%", "{#", "cookiecutter."):
            assert marker not in text, f"{marker!r} left in {rel}"


def test_jinja_leaves_no_stray_whitespace(default_project):
    # Jinja tags and includes easily leave trailing spaces or doubled blank lines,
    # which the baked project's own whitespace hooks would then reject.
    for rel in project_files(default_project):
        text = (default_project / rel).read_text(encoding="utf-8")
        assert text.endswith("\n") and not text.endswith("\n\n"), f"{rel}: not one final newline"
        for number, line in enumerate(text.splitlines(), 1):
            assert line == line.rstrip(), f"{rel}:{number}: trailing whitespace"
        if rel.endswith(".md"):
            assert "\n\n\n" not in text, f"{rel}: more than one blank line in a row"


def test_configs_and_metadata_parse(default_project):
    for path in default_project.rglob("*.yaml"):
        yaml.safe_load(path.read_text(encoding="utf-8"))
    meta = tomllib.loads((default_project / "pyproject.toml").read_text(encoding="utf-8"))
    assert meta["project"]["name"] == "attention-is-all-you-need"
    assert meta["project"]["requires-python"] == ">=3.10"
    assert meta["project"]["scripts"]["attention-is-all-you-need-train"] == f"{PKG}.train:main"


def test_per_type_files_replace_shared_ones_only_where_intended():
    # The post-generation hook moves a paper type's files over the shared tree; a
    # path present in both replaces the shared file, which must be on purpose.
    root = TEMPLATE / "{{cookiecutter.paper_slug}}"
    shared = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    for paper_type in PAPER_TYPES:
        type_root = root / "_paper_types" / paper_type
        assert type_root.is_dir(), f"paper type {paper_type} has no _paper_types folder"
        own = {p.relative_to(type_root).as_posix() for p in type_root.rglob("*") if p.is_file()}
        assert own & shared == REPLACED_SHARED_FILES.get(paper_type, set()), paper_type


@pytest.mark.parametrize(
    "title, slug, package",
    [
        ("3D Gaussian Splatting for Real-Time Radiance Field Rendering",
         "3d-gaussian-splatting-for-real-time-radiance",
         "paper_3d_gaussian_splatting_for_real_time_radiance"),
        ("🚀🤖", "paper", "paper"),
        ("Über Attention: Naïve Vision", "uber-attention-naive-vision", "uber_attention_naive_vision"),
    ],
)  # fmt: skip
def test_awkward_titles_derive_valid_names(cookies, title, slug, package):
    project = bake_ok(cookies, paper_title=title)
    assert project.name == slug
    assert len(slug) <= 48
    assert (project / "src" / package / "train.py").is_file()


@pytest.mark.parametrize(
    "license_name, phrase",
    [
        ("MIT", "Permission is hereby granted, free of charge"),
        ("Apache-2.0", "Apache License\n                        Version 2.0"),
        ("BSD-3-Clause", "Redistribution and use in source and binary forms"),
        ("Proprietary", "All rights reserved."),
    ],
)
def test_each_license_bakes_its_text(cookies, license_name, phrase):
    project = bake_ok(cookies, license=license_name, author_name="Ada Lovelace")
    text = (project / "LICENSE").read_text(encoding="utf-8")
    assert phrase in text
    meta = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    spdx = "LicenseRef-Proprietary" if license_name == "Proprietary" else license_name
    assert meta["project"]["license"] == spdx and meta["project"]["license-files"] == ["LICENSE"]
    if license_name != "Apache-2.0":  # Apache's notice goes in a NOTICE line, not here
        assert re.search(r"Copyright \(c\) \d{4},? Ada Lovelace", text)
    assert text.endswith("\n") and not text.endswith("\n\n")


def test_baking_again_over_the_same_project_changes_nothing(cookies, tmp_path):
    # Hooks must be idempotent: cruft and --overwrite-if-exists run them again.
    from cookiecutter.main import cookiecutter

    first = Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(tmp_path)))
    before = {rel: (first / rel).read_bytes() for rel in project_files(first)}
    second = Path(
        cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(tmp_path), overwrite_if_exists=True)
    )
    assert second == first
    assert {rel: (first / rel).read_bytes() for rel in project_files(first)} == before


def test_the_post_bake_message_gives_the_readme_s_set_up(tmp_path):
    # What the terminal says after baking and what the README says must be one
    # set-up: the same environment, the same torch, the same commands in order.
    result = cookiecutter_cli(str(TEMPLATE), "-o", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    readme = (tmp_path / "attention-is-all-you-need" / "README.md").read_text(encoding="utf-8")
    set_up = readme.split("## Set up", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    expected = ["cd attention-is-all-you-need", *set_up.strip().splitlines()]
    printed = [line.strip() for line in result.stdout.splitlines()]
    start = printed.index(expected[0])
    assert printed[start : start + len(expected)] == expected
    assert any("pip install torch" in line for line in expected)  # torch is said, not implied


@pytest.mark.parametrize("package_name", ["attention_is_all_you_need", "r" * 64, "p"])
def test_baked_code_lints_and_is_formatted_at_any_name_length(cookies, package_name):
    # The package name appears in imports and strings; the baked code must pass its
    # own `ruff check` and `ruff format --check` for the shortest and longest names.
    project = bake_ok(cookies, package_name=package_name)
    for command in (["check"], ["format", "--check"]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *command, "--no-cache", "."],
            cwd=project, capture_output=True, text=True,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr


def assert_hardened_workflow(text: str) -> dict:
    """Valid YAML, read-only token, actions pinned to commit SHAs, pip caching,
    CPU torch. Returns the parsed workflow."""
    workflow = yaml.safe_load(text)
    assert workflow["permissions"] == {"contents": "read"}  # least privilege
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    for step in steps:
        if "uses" in step:  # pinned to a full commit SHA, not a movable tag
            assert re.fullmatch(r"[\w-]+/[\w-]+@[0-9a-f]{40}", step["uses"]), step["uses"]
            if step["uses"].startswith("actions/checkout"):
                assert step["with"]["persist-credentials"] is False
    setups = [step for step in steps if step.get("uses", "").startswith("actions/setup-python")]
    assert setups and all(step["with"]["cache"] == "pip" for step in setups)
    assert any("download.pytorch.org/whl/cpu" in step.get("run", "") for step in steps)
    return workflow


@pytest.mark.parametrize("python_min", ["3.10", "3.13"])
def test_baked_ci_workflow_is_valid_hardened_yaml(cookies, python_min):
    project = bake_ok(cookies, python_min=python_min)
    text = (project / ".github" / "workflows" / "ci.yml").read_text(encoding="utf-8")
    workflow = assert_hardened_workflow(text)
    # GitHub's own expressions survive Jinja untouched.
    assert "${{ matrix.python-version }}" in text and "${{ github.ref }}" in text
    versions = workflow["jobs"]["test"]["strategy"]["matrix"]["python-version"]
    assert versions[0] == python_min and len(versions) == len(set(versions))
    # The slow suite runs in CI too, on every push to main and every pull request,
    # with the extras whose tests would otherwise skip.
    assert {"push", "pull_request"} <= set(workflow[True])  # YAML 1.1 reads `on` as True
    slow = [step.get("run", "") for step in workflow["jobs"]["slow"]["steps"]]
    assert "pytest -m slow -n auto" in slow
    assert any("[dev,tensorboard,optuna,slurm]" in step for step in slow)


def test_template_ci_workflow_covers_every_paper_type():
    text = (TEMPLATE / ".github" / "workflows" / "template-ci.yml").read_text(encoding="utf-8")
    workflow = assert_hardened_workflow(text)
    parts = workflow["jobs"]["test"]["strategy"]["matrix"]["part"]
    assert set(parts) == {"bake", "methods", *PAPER_TYPES}
    # Every slow test file runs in some part: test_baked_project.py's tests carry
    # their paper type in their ids (the type parts select them); others by name.
    named = " ".join(step.get("run", "") for step in workflow["jobs"]["test"]["steps"])
    for path in sorted((TEMPLATE / "tests").glob("test_*.py")):
        slow = re.search(r"^pytestmark = pytest\.mark\.slow", path.read_text(encoding="utf-8"), re.M)
        if slow and path.name != "test_baked_project.py":
            assert f"tests/{path.name}" in named, f"{path.name}: slow, and in no CI part"
    # The bundled claims, weekly and on demand (YAML 1.1 reads the key `on` as True).
    triggers = workflow[True]
    assert "schedule" in triggers and "workflow_dispatch" in triggers
    claims = workflow["jobs"]["claims"]
    assert "schedule" in claims["if"] and "workflow_dispatch" in claims["if"]
    assert any("tests/bundled_claims.py" in step.get("run", "") for step in claims["steps"])


def test_precommit_ruff_matches_the_dev_extra(default_project):
    config = yaml.safe_load((default_project / ".pre-commit-config.yaml").read_text())
    pinned = {
        dep
        for repo in config["repos"]
        for hook in repo["hooks"]
        for dep in hook.get("additional_dependencies", [])
        if dep.startswith("ruff")
    }
    meta = tomllib.loads((default_project / "pyproject.toml").read_text())
    assert pinned == {d for d in meta["project"]["optional-dependencies"]["dev"] if d.startswith("ruff")}
    assert all(repo["repo"] == "local" for repo in config["repos"])  # no git host needed
