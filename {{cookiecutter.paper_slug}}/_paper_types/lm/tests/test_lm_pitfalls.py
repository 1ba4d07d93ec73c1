"""Language-model pitfalls: the causal mask, the target shift, the attention maths,
the tied head, positions at generation time, the corpus splits and its cache.

Each of these bugs still trains and still lowers the loss, which is why they
survive into reproductions: a mask that leaks looks like a great bpc, targets not
shifted train a model to copy its input (bpc near 0 and nothing learnt), a head
"tied" by a copy drifts apart from the embedding after the first step, and
positions counted from the end of the input are right on every training window
and wrong on every prompt shorter than one.
"""

from __future__ import annotations

import io
import json

import pytest
import torch
import torch.nn.functional as F

import {{ cookiecutter.package_name }}.data as data
from {{ cookiecutter.package_name }}.data import (
    load_corpus,
)
from {{ cookiecutter.package_name }}.model import (
    attention,
    build_model,
    causal_keep_mask,
    generate,
)

# --- The model --------------------------------------------------------------------


def test_causal_mask_blocks_the_future_at_every_position(model, batch, forward_with_input_grad):
    # Every position t: zero gradient from every later input, non-zero from every
    # earlier one. A mask checked at one t misses one that leaks only near the end.
    model.eval()
    length = 12
    logits, views = forward_with_input_grad(model, batch["inputs"][:1, :length])
    (x,) = views.values()  # the token embeddings
    for t in range(length):
        (grad,) = torch.autograd.grad(logits[0, t].sum(), x, retain_graph=True)
        seen = grad[0].abs().sum(dim=-1)  # one number per input position
        assert torch.all(seen[t + 1 :] == 0), f"position {t} sees later characters"
        assert torch.all(seen[: t + 1] > 0), f"position {t} ignores some earlier characters"


def test_attention_equals_pytorch_reference():
    # The softmax runs over the keys (the last axis) and the scores are scaled by
    # 1/sqrt(D). Softmax over the queries, or no scale, give other numbers here:
    # unscaled scores of random q, k with D = 64 are 8 times too large.
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 64) for _ in range(3))
    keep = causal_keep_mask(5)
    ours = attention(q, k, v, keep)
    reference = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
    # torch.allclose: torch.testing.assert_close imports sympy on its first call (~0.7 s).
    assert torch.allclose(ours, reference, atol=1e-5)
    assert torch.allclose(ours, F.scaled_dot_product_attention(q, k, v, is_causal=True), atol=1e-5)


def test_the_head_is_tied_and_stays_tied(cfg, data_spec, batch):
    # One Parameter, not two equal ones: a copy (or two Parameters sharing .data)
    # passes an equality check at initialisation and then drifts apart, or is
    # untied by .to() and by loading a state_dict.
    torch.manual_seed(0)
    model = build_model(cfg.model, data_spec)
    assert model.head.weight is model.token_embedding.weight
    assert sum(p is model.head.weight for p in model.parameters()) == 1  # counted once
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    torch.manual_seed(1)
    loaded = build_model(cfg.model, data_spec)
    loaded.load_state_dict(torch.load(buffer, weights_only=True))
    assert loaded.head.weight is loaded.token_embedding.weight
    assert torch.equal(loaded.head.weight, model.token_embedding.weight)
    moved = loaded.to(torch.float64)
    assert moved.head.weight is moved.token_embedding.weight
    # One gradient step moves both (they are one). Written out: building a
    # torch.optim optimiser imports torch._dynamo (~0.7 s).
    F.cross_entropy(model(batch["inputs"]).flatten(0, 1), batch["targets"].flatten()).backward()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter -= parameter.grad
    assert torch.equal(model.head.weight, model.token_embedding.weight)


def test_a_short_prompt_is_read_at_positions_from_zero(cfg, data_spec, batch):
    # Generation reads a prompt of P < T characters at positions 0..P-1, as training
    # read the first P characters of a window. Positions counted from the end of the
    # input (T-P..T-1) agree with that on full windows and on nothing shorter.
    torch.manual_seed(0)
    model = build_model(cfg.model, data_spec).eval()
    model.position_embedding.weight.data.normal_(0, 1.0)  # positions that matter
    window = batch["inputs"][:2]
    with torch.no_grad():
        full = model(window)
        for p in (1, 5, window.size(1) // 2):
            assert torch.allclose(model(window[:, :p]), full[:, :p], atol=1e-5), f"prompt of {p}"
            written = generate(model, window[:, :p], 1)
            assert torch.equal(written[:, -1], full[:, p - 1].argmax(dim=-1)), f"prompt of {p}"


# --- The data ---------------------------------------------------------------------


def test_targets_are_the_inputs_shifted_by_one(cfg, splits, draw_batch):
    # Each position predicts the next character: targets[t] == inputs[t + 1], and the
    # last target is the character after the window. Targets equal to the inputs
    # (no shift) train a copier; shifted by two, a model of the character after next.
    batch = draw_batch(16)
    windows = {"training batch": batch, "val": splits["val"], "test": splits["test"]}
    for name, w in windows.items():
        assert torch.equal(w["inputs"][:, 1:], w["targets"][:, :-1]), name
        assert not torch.equal(w["inputs"], w["targets"]), name
    stream = splits["train"].stream
    for i in (0, 1, len(splits["train"]) - 1):
        window = splits["train"][i]
        assert torch.equal(window["targets"], stream[i + 1 : i + 1 + cfg.data.context_length])


# --- The cache --------------------------------------------------------------------


@pytest.fixture
def small_library(tmp_path):
    library = tmp_path / "lib"
    (library / "pkg").mkdir(parents=True)
    (library / "one.py").write_text('"""First module."""\n\ndef f():\n    """Eff."""\n')
    (library / "pkg" / "two.py").write_text('"""Second module."""\n')
    cfg = data.DataConfig(
        cache_dir=str(tmp_path / "cache"), seed=0, context_length=4, val_chars=1, test_chars=1
    )
    return library, cfg


def test_the_corpus_is_built_once_then_read_back(small_library, monkeypatch):
    library, cfg = small_library
    text = load_corpus(cfg, library)
    text_path, facts_path = data.cache_paths(cfg)
    facts = json.loads(facts_path.read_text())
    assert text_path.read_bytes().decode("ascii") == text
    assert facts["documents"] == 3 and facts["files"] == 2 and facts["characters"] == len(text)
    assert facts["source"] == str(library) and facts["python"] in text_path.name

    def no_rebuild(*args, **kwargs):
        raise AssertionError("the cached corpus was built again")

    monkeypatch.setattr(data, "build_corpus", no_rebuild)
    assert load_corpus(cfg, library) == text
    # A cache that does not match its JSON (a partial or edited file) is never trusted.
    text_path.write_bytes(text_path.read_bytes()[:-3])
    monkeypatch.undo()
    assert load_corpus(cfg, library) == text
    assert text_path.read_bytes().decode("ascii") == text


def test_a_failed_write_leaves_no_corpus_behind(small_library, monkeypatch):
    # Killed or out of disk mid-write: the next run must find either no corpus or a
    # whole one, never a part it would trust. Writing to a temporary file and
    # renaming it into place gives that; writing to the cache path directly does not.
    library, cfg = small_library

    def disk_full(fd):
        raise OSError("No space left on device")

    monkeypatch.setattr(data.os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        load_corpus(cfg, library)
    text_path, facts_path = data.cache_paths(cfg)
    assert not text_path.exists() and not facts_path.exists()
    assert list(text_path.parent.iterdir()) == [], "a temporary file was left behind"
