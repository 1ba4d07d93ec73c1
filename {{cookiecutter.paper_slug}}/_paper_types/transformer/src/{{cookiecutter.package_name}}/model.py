"""Model: a decoder-only transformer written from its parts.

Only ``nn.Linear``, ``nn.Embedding`` and ``nn.LayerNorm`` come from PyTorch; the
attention, the causal mask, the blocks and the positional encoding are spelled out
here so every line can be checked against the paper.

Layout is pre-LN (LayerNorm before attention and MLP, inside the residual branch)
plus one final LayerNorm before the output head. Post-LN (the original 2017 layout)
puts LayerNorm on the residual path itself; its gradients near the output are large
at initialisation and it needs learning-rate warm-up to train at all. Pre-LN keeps
an identity path from input to output, trains stably with or without warm-up, and
the final LayerNorm is needed because nothing else normalises the residual stream
before the head.

Shapes: B batch, T sequence length, C model width, H heads, D = C / H head width.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from omegaconf import MISSING
from torch import nn


{% include "_paper_types/_shared/causal_attention.py" %}

class MLP(nn.Module):
    def __init__(self, d_model: int, hidden: int, dropout: float):
        super().__init__()
        self.up = nn.Linear(d_model, hidden)
        self.down = nn.Linear(hidden, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.down(torch.nn.functional.gelu(self.up(x))))


class Block(nn.Module):
    """Pre-LN block: x + attn(ln(x)), then x + mlp(ln(x)).

    ``residual=False`` (an ablation) drops the "x +": each sub-layer then replaces the
    stream instead of adding to it, and gradients must pass through every layer.
    """

    def __init__(self, d_model: int, n_heads: int, mlp_ratio: int, dropout: float, residual: bool):
        super().__init__()
        self.residual = residual
        self.ln_attn = nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, n_heads, dropout)
        self.ln_mlp = nn.LayerNorm(d_model)
        self.mlp = MLP(d_model, mlp_ratio * d_model, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        keep = x if self.residual else 0
        x = keep + self.attn(self.ln_attn(x))
        keep = x if self.residual else 0
        return keep + self.mlp(self.ln_mlp(x))


class TransformerLM(nn.Module):
    """Token ids [B, T] -> next-token logits [B, T, vocab_size]."""

    def __init__(
        self,
        vocab_size: int,
        context_length: int,
        d_model: int,
        n_layers: int,
        n_heads: int,
        mlp_ratio: int,
        dropout: float,
        positional_encoding: bool,
        residual: bool = True,
    ):
        super().__init__()
        self.context_length = context_length
        self.token_embedding = nn.Embedding(vocab_size, d_model)
        # Learned absolute positions. Attention itself is blind to order: without
        # this the model is permutation-equivariant over the tokens it can see.
        self.position_embedding = (
            nn.Embedding(context_length, d_model) if positional_encoding else None
        )
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            Block(d_model, n_heads, mlp_ratio, dropout, residual) for _ in range(n_layers)
        )
        self.ln_final = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        # Small weights (GPT-2's std 0.02) keep initial logits near zero, so the
        # loss at initialisation is close to ln(vocab_size): a uniform guess.
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        t = tokens.size(1)
        if t > self.context_length:
            raise ValueError(
                f"sequence of length {t} exceeds the context length "
                f"{self.context_length} the model was built for"
            )
        x = self.token_embedding(tokens)  # [B, T, C]
        if self.position_embedding is not None:
            positions = torch.arange(t, device=tokens.device)
            x = x + self.position_embedding(positions)  # broadcast over the batch
        x = self.dropout(x)
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_final(x))


{% include "_paper_types/_shared/generate.py" %}

@dataclass
class ModelConfig:
    """The keys of configs/model/*.yaml and their types (see configs/schema.py)."""

    d_model: int = MISSING
    n_layers: int = MISSING
    n_heads: int = MISSING
    mlp_ratio: int = MISSING
    dropout: float = MISSING
    positional_encoding: bool = MISSING
    residual: bool = MISSING


def build_model(cfg, data_spec: dict[str, int]) -> TransformerLM:
    """Build the model from ``cfg.model`` and the sizes given by ``data.spec``."""
    return TransformerLM(
        vocab_size=data_spec["vocab_size"],
        context_length=data_spec["context_length"],
        d_model=cfg.d_model,
        n_layers=cfg.n_layers,
        n_heads=cfg.n_heads,
        mlp_ratio=cfg.mlp_ratio,
        dropout=cfg.dropout,
        positional_encoding=cfg.positional_encoding,
        residual=cfg.residual,
    )
