@torch.no_grad()
def generate(
    model: nn.Module,
    prompt: torch.Tensor,
    n: int,
    generator: torch.Generator | None = None,
    temperature: float = 0.0,
) -> torch.Tensor:
    """Each prompt [B, P] extended by ``n`` tokens, one at a time: the most likely
    next token (``temperature`` 0), or one drawn from softmax(logits / temperature)
    with ``generator`` (on the CPU). Returns [B, P + n].

    Every step reads the whole sequence again (its last ``context_length`` tokens),
    with no cache of earlier steps: slower, but the exact computation training
    scores, so a position or mask mistake cannot hide in a separate decoding path.
    (tests/test_generation.py checks both against the forward pass.)"""
    tokens = prompt
    for _ in range(n):
        logits = model(tokens[:, -model.context_length :])[:, -1]  # [B, vocab]
        if temperature == 0:
            following = logits.argmax(dim=-1, keepdim=True)
        else:
            probabilities = torch.softmax(logits.float() / temperature, dim=-1).cpu()
            following = torch.multinomial(probabilities, 1, generator=generator)
        tokens = torch.cat([tokens, following.to(tokens.device)], dim=1)
    return tokens
