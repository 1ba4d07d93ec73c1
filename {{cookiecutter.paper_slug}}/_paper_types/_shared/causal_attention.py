def causal_keep_mask(length: int, device=None) -> torch.Tensor:
    """Boolean [T, T] mask; True where a query may attend to a key (key <= query).

    Convention: True = keep, as in ``F.scaled_dot_product_attention``.
    ``nn.MultiheadAttention`` uses the opposite one (True = blocked).
    """
    return torch.ones(length, length, dtype=torch.bool, device=device).tril()


def attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, keep: torch.Tensor
) -> torch.Tensor:
    """Scaled dot-product attention. q, k, v: [B, H, T, D]; keep: [T, T] bool."""
    # Without the 1/sqrt(D) scale the scores grow with D and softmax saturates.
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.size(-1))  # [B, H, T(query), T(key)]
    # -inf before softmax gives blocked keys exactly zero weight (and zero gradient).
    scores = scores.masked_fill(~keep, float("-inf"))
    weights = scores.softmax(dim=-1)  # over the keys: each query's weights sum to 1
    return weights @ v  # [B, H, T, D]


class CausalSelfAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int, dropout: float):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(
                f"model.d_model={d_model} must be divisible by model.n_heads={n_heads}"
            )
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)  # queries, keys, values at once
        self.out = nn.Linear(d_model, d_model)  # back into the residual stream
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(x).split(c, dim=-1)
        # [B, T, C] -> [B, H, T, D]: each head attends over its own slice of width D.
        q, k, v = (z.view(b, t, self.n_heads, -1).transpose(1, 2) for z in (q, k, v))
        y = attention(q, k, v, causal_keep_mask(t, x.device))
        y = y.transpose(1, 2).reshape(b, t, c)  # heads back side by side
        return self.dropout(self.out(y))
