"""Where a training run's random numbers come from, so that a resumed run draws exactly the same ones.

The network is initialised after ``torch.manual_seed(seed)``. Everything random during an epoch (the
data order, the class ``i`` of each step, PGD's random starts) is drawn from CPU ``torch.Generator``
objects seeded from ``(seed, epoch, stream)`` (:func:`epoch_generator`), independent of the global
state; the global torch, numpy and CUDA states are checkpointed too (:func:`rng_state`). On CPU a run
resumed after any finished epoch is therefore bitwise the uninterrupted one.

PGD's random starts are drawn ahead, :data:`NOISE_CHUNK_STEPS` steps at a time, from their stream
(:class:`ChunkedNoise`: the same numbers as drawing them step by step), so that on CUDA the step
itself draws nothing and can be replayed as a CUDA graph.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

# independent random streams per epoch
STREAM_ORDER, STREAM_CLASS, STREAM_PGD = 0, 1, 2
NOISE_CHUNK_STEPS = 100


def epoch_generator(seed: int, epoch: int, stream: int) -> torch.Generator:
    """A CPU generator seeded from ``(seed, epoch, stream)`` (independent streams via SeedSequence)."""
    state = np.random.SeedSequence([seed, epoch, stream]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def epoch_draws(seed: int, epoch: int, n: int, n_batches: int, k: int,
                device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The epoch's data order (a permutation of ``n``, on ``device``) and one class per batch (CPU)."""
    order = torch.randperm(n, generator=epoch_generator(seed, epoch, STREAM_ORDER)).to(device)
    classes = torch.randint(k, (n_batches,), generator=epoch_generator(seed, epoch, STREAM_CLASS))
    return order, classes


class ChunkedNoise:
    """Uniform [0, 1) float64 rows ``(n, width)`` from ``gen``, drawn ahead :data:`NOISE_CHUNK_STEPS`
    batches at a time and moved to ``device`` once per chunk.

    Rows are asked for in order, one batch at a time; they are the numbers that drawing each batch's
    rows from ``gen`` in turn would give (the CPU generator fills a tensor sequentially).
    """

    def __init__(self, gen: torch.Generator, n: int, batch_size: int, device: torch.device,
                 width: int) -> None:
        self.gen, self.n, self.device, self.width = gen, n, device, width
        self.chunk_rows = NOISE_CHUNK_STEPS * batch_size
        self.base, self.chunk = 0, torch.empty(0, width, dtype=torch.float64, device=device)

    def rows(self, start: int, stop: int) -> torch.Tensor:
        if stop > self.base + len(self.chunk):
            self.base += len(self.chunk)
            if start != self.base:
                raise ValueError("rows must be asked for in order")
            count = min(self.chunk_rows, self.n - start)
            drawn = torch.rand((count, self.width), generator=self.gen, dtype=torch.float64)
            self.chunk = drawn.to(self.device)
        return self.chunk[start - self.base:stop - self.base]


# random states in a form torch.load(weights_only=True) accepts


def rng_state(device: torch.device) -> dict[str, Any]:
    """The global torch, numpy (and CUDA) random states."""
    np_state = np.random.get_state(legacy=False)  # noqa: NPY002
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np.asarray(np_state["state"]["key"]).astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    npst = state["numpy"]
    np.random.set_state({  # noqa: NPY002
        "bit_generator": npst["bit_generator"],
        "state": {"key": npst["key"].numpy().astype(np.uint32), "pos": npst["pos"]},
        "has_gauss": npst["has_gauss"],
        "gauss": npst["gauss"],
    })
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def seed_globals(seed: int) -> None:
    """Seed the global torch and numpy states (the network's initialisation draws from torch's)."""
    torch.manual_seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (legacy global state, for any code using it)
