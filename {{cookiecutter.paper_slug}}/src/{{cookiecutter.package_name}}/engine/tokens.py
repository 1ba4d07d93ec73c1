"""Token streams: a language model's split is one long sequence of token ids, and
its examples are windows of it.

``TokenWindows(stream, length, stride)`` is that split as a map-style Dataset:
example ``i`` reads ``length`` tokens from position ``i * stride`` as its inputs,
and the same window moved one token on as its targets (each position predicts
the token after it). Nothing is copied: the stream stays one tensor.

- Training uses every position (``stride=1``): ``RandomWindows`` draws each
  batch's windows at starts drawn from the data generator, as nanoGPT's
  ``get_batch`` does. Its only memory is that generator, which every checkpoint
  saves, so a resumed run draws exactly the windows an uninterrupted one would,
  mid-epoch or not (with a stream there are no epochs to be in the middle of).
- Evaluation uses fixed, non-overlapping windows (``stride=length``): every token
  of the split is scored once, in the same windows at every validation.
  ``windows.tensors()`` gives them as in-memory tensors (views of the stream),
  evaluation's fast path; the Dataset itself is read through a DataLoader where
  the split is too large to hold as windows.

Windows of stride 1 overlap: two of them are not two independent examples, and a
split's windows share text only where the stream repeats itself. Cut the splits
from the stream in contiguous blocks (never by drawing windows at random from one
stream) so no val or test text is in a training window.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset


class TokenWindows(Dataset):
    """The windows of a 1-D stream of token ids: ``len(self)`` of them, each
    ``{"inputs": [length], "targets": [length]}`` (targets = inputs shifted by one)."""

    def __init__(self, stream: torch.Tensor, length: int, stride: int = 1):
        if stream.dim() != 1 or stream.is_floating_point():
            raise ValueError(
                f"a token stream is a 1-D tensor of token ids, not {stream.dtype} {tuple(stream.shape)}"
            )
        if len(stream) < length + 1:
            raise ValueError(
                f"a stream of {len(stream)} tokens holds no window of {length} + 1 "
                "(the inputs and the token after them): lower the window length or give more text"
            )
        self.stream, self.length, self.stride = stream, length, stride

    def __len__(self) -> int:
        return (len(self.stream) - self.length - 1) // self.stride + 1

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(f"window {i} of {len(self)}")
        start = i * self.stride
        return {
            "inputs": self.stream[start : start + self.length],
            "targets": self.stream[start + 1 : start + self.length + 1],
        }

    def first(self, n: int) -> TokenWindows:
        """The first ``n`` windows, as windows of a shorter stream (what a test that
        trains on a few examples takes: random windows are then drawn among them)."""
        n = min(n, len(self))
        return TokenWindows(
            self.stream[: (n - 1) * self.stride + self.length + 1], self.length, self.stride
        )

    def tensors(self) -> dict[str, torch.Tensor]:
        """All windows as [len(self), length] tensors: views of the stream (unfold
        copies nothing), so holding every window costs no more than the stream."""
        used = self.stream[: (len(self) - 1) * self.stride + self.length + 1]
        return {
            "inputs": used[:-1].unfold(0, self.length, self.stride),
            "targets": used[1:].unfold(0, self.length, self.stride),
        }


class RandomWindows:
    """Endless training batches of ``batch_size`` windows at random starts.

    The starts are drawn with replacement from ``generator``: a window may repeat,
    as a token may in a random sample of text, and with as many windows as a
    stream has tokens a repeat within a batch is rare. The windows are gathered
    in one indexing operation on the stream (no Python per example) and moved to
    ``device``. No ``state_dict``: the generator is the whole state."""

    def __init__(
        self, windows: TokenWindows, batch_size: int, generator: torch.Generator, device=None
    ):
        if windows.stride != 1:
            raise ValueError(
                "RandomWindows draws from every position: give it TokenWindows(stream, length, stride=1)"
            )
        self.windows, self.batch_size, self.generator = windows, batch_size, generator
        self.device = device
        self.offsets = torch.arange(windows.length + 1)

    def __iter__(self):
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        starts = torch.randint(len(self.windows), (self.batch_size, 1), generator=self.generator)
        chunk = self.windows.stream[starts + self.offsets]  # [B, length + 1]
        if self.device is not None:
            chunk = chunk.to(self.device, non_blocking=True)
        return {"inputs": chunk[:, :-1], "targets": chunk[:, 1:]}


def determined_positions(inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """[N, T] bool: True where a causal model could know the target from what it
    has read, among these N windows: no other window with the same inputs up to
    and including that position has another target there.

    What a sequence model can memorise of a batch of text windows. Windows that
    start with the same characters ("the ") and then go on differently cannot all
    be right at those first positions, whatever the model; a check that asks for
    every target (as for one window, where every position is determined) could
    never pass on such a batch. Computed from the true inputs, so a model shown
    other inputs (zeroed: the input baseline) is still asked for the same targets:
    it cannot pass vacuously."""
    n, length = inputs.shape
    determined = torch.empty(n, length, dtype=torch.bool, device=inputs.device)
    prefix = torch.zeros(n, dtype=torch.long, device=inputs.device)  # id of inputs[:, :t+1]
    for t in range(length):
        pairs = torch.stack([prefix, inputs[:, t]], dim=1)
        _, prefix = torch.unique(pairs, dim=0, return_inverse=True)
        groups = int(prefix.max()) + 1
        # The smallest and largest target among the windows sharing each prefix.
        low = torch.full((groups,), torch.iinfo(torch.long).max, device=inputs.device)
        high = torch.full((groups,), torch.iinfo(torch.long).min, device=inputs.device)
        low = low.scatter_reduce(0, prefix, targets[:, t], "amin")
        high = high.scatter_reduce(0, prefix, targets[:, t], "amax")
        determined[:, t] = low[prefix] == high[prefix]
    return determined
