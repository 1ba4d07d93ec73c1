"""Model: a GPT-2-shaped decoder-only language model, written from its parts.

Radford et al. (2019), "Language Models are Unsupervised Multitask Learners",
section 2.3: the GPT layout with LayerNorm moved to the input of each sub-block
(pre-LN), a final LayerNorm after the last block, learned absolute position
embeddings, the output head tied to the token embedding (the logits are
``h @ E^T``), and residual projections initialised with their std scaled by
1/sqrt(number of residual layers) (= 2 per block: attention and MLP) so that the
residual stream's variance does not grow with depth.

Only ``nn.Linear``, ``nn.Embedding`` and ``nn.LayerNorm`` come from PyTorch; the
attention, the causal mask and the blocks are spelled out here so every line can
be checked against the paper.

Shapes: B batch, T sequence length, C model width, H heads, D = C / H head width,
V vocabulary.
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
        self.down = nn.Linear(hidden, d_model)  # a residual projection (scaled init)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # GPT-2's GELU is the tanh approximation.
        hidden = torch.nn.functional.gelu(self.up(x), approximate="tanh")
        return self.dropout(self.down(hidden))


class Block(nn.Module):
    """Pre-LN block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, d_model: int, n_heads: int, mlp_ratio: int, dropout: float):
        super().__init__()
        self.ln_attn = nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, n_heads, dropout)
        self.ln_mlp = nn.LayerNorm(d_model)
        self.mlp = MLP(d_model, mlp_ratio * d_model, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_attn(x))
        return x + self.mlp(self.ln_mlp(x))


class GPT(nn.Module):
    """Token ids [B, T] -> next-token logits [B, T, V]."""

    def __init__(
        self,
        vocab_size: int,
        context_length: int,
        d_model: int,
        n_layers: int,
        n_heads: int,
        mlp_ratio: int,
        dropout: float,
        positional_encoding: bool = True,
        tied_head: bool = True,
    ):
        super().__init__()
        self.context_length = context_length
        self.token_embedding = nn.Embedding(vocab_size, d_model)
        # Learned absolute positions 0..T-1. Attention itself is blind to order:
        # without them only the causal mask tells a position how far in it is.
        self.position_embedding = (
            nn.Embedding(context_length, d_model) if positional_encoding else None
        )
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            Block(d_model, n_heads, mlp_ratio, dropout) for _ in range(n_layers)
        )
        self.ln_final = nn.LayerNorm(d_model)  # nothing else normalises the stream's end
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        self.init_weights(n_layers)
        if tied_head:
            # One matrix for reading tokens in and scoring them out: the same
            # Parameter object (not a copy), so one update moves both, and a
            # state_dict save/load or .to() keeps them one.
            self.head.weight = self.token_embedding.weight

    def init_weights(self, n_layers: int) -> None:
        # GPT-2: weights N(0, 0.02), biases 0, LayerNorm gain 1 and bias 0 (torch's
        # default); small weights keep the initial logits near zero, so the loss at
        # initialisation is close to ln(V). The projections that write into the
        # residual stream get 0.02 / sqrt(2 * n_layers): each block adds two terms,
        # and the stream's variance should not grow with the number of them.
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        for block in self.blocks:
            for projection in (block.attn.out, block.mlp.down):
                nn.init.normal_(projection.weight, mean=0.0, std=0.02 / math.sqrt(2 * n_layers))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        t = tokens.size(1)
        if t > self.context_length:
            raise ValueError(
                f"sequence of length {t} exceeds the context length "
                f"{self.context_length} the model was built for"
            )
        x = self.token_embedding(tokens)  # [B, T, C]
        if self.position_embedding is not None:
            # Positions counted from the start of the input: a prompt of P tokens
            # uses positions 0..P-1, exactly as the first P tokens of a window do.
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
    positional_encoding: bool = MISSING  # false: no position embedding (an ablation)
    tied_head: bool = MISSING  # false: the head has its own V x C matrix (an ablation)


def build_model(cfg, data_spec: dict[str, int]) -> GPT:
    """Build the model from ``cfg.model`` and the sizes given by ``data.spec``."""
    return GPT(
        vocab_size=data_spec["vocab_size"],
        context_length=data_spec["context_length"],
        d_model=cfg.d_model,
        n_layers=cfg.n_layers,
        n_heads=cfg.n_heads,
        mlp_ratio=cfg.mlp_ratio,
        dropout=cfg.dropout,
        positional_encoding=cfg.positional_encoding,
        tied_head=cfg.tied_head,
    )
