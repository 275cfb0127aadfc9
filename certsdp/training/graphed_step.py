"""A training step captured once as a CUDA graph and replayed, for NT-NN and AT-NN on a GPU.

A step of adversarial training launches about 1,500 small kernels (41 forward/backward passes of
the network on a batch of 50), so launched one by one from Python it is bound by launch overhead
(``docs/training.md``). A CUDA graph records the whole step (loss, backward, optimizer step) once and
replays it with a single launch; only copying the next batch into the graph's input tensors happens
outside it. The gradients are set to None just before the capture, so the captured backward writes
fresh gradient buffers of the graph's own on every replay (nothing accumulates, and no zero_grad is
needed inside the graph).

What a captured step needs, and what :class:`certsdp.training.step.StepRunner` ensures before using
one:

* no host synchronisation and no host-side randomness inside the loss (the PGD of
  :func:`certsdp.attacks.pgd_unchecked` takes its random start as an input tensor): the
  regularizer's ``graph_capturable``;
* fixed shapes: a batch of another size (the last one of an epoch) runs eagerly;
* an optimizer with ``capturable=True`` (its step counter lives on the GPU); a float learning rate is
  baked into the graph, so the caller captures again when it changes.

Capturing needs a few warm-up steps (lazy initialisation of cuBLAS, autograd and the optimizer
state). They are real optimizer steps, so the parameters and optimizer state are restored afterwards:
the first replay is the first step that counts.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from certsdp.errors import InputError

WARMUP_STEPS = 3
SUPPORTED_OPTIMIZERS = (torch.optim.Adam, torch.optim.AdamW)
"""Optimizers whose fresh state is all zeros, which the warm-up restore relies on (NAdam and ASGD,
for example, start some state at 1 or at the learning rate)."""


def set_capturable(optimizer: torch.optim.Optimizer, capturable: bool) -> None:
    """Set ``capturable`` in every parameter group and move each step counter where it must live.

    A capturable Adam keeps ``state["step"]`` as a float32 tensor on the parameter's device; a
    non-capturable one on the CPU. Needed when a checkpoint written on one kind of device is resumed
    on the other (the saved groups carry their own flag).
    """
    for group in optimizer.param_groups:
        if "capturable" not in group:
            raise InputError(f"{type(optimizer).__name__} has no capturable mode")
        group["capturable"] = capturable
        for p in group["params"]:
            step = optimizer.state.get(p, {}).get("step")
            if isinstance(step, torch.Tensor):
                device = p.device if capturable else torch.device("cpu")
                optimizer.state[p]["step"] = step.to(device=device, dtype=torch.float32)


def _snapshot(params: list[torch.Tensor], optimizer: torch.optim.Optimizer) -> Callable[[], None]:
    """A function that puts ``params`` and the optimizer state back as they are now (in place)."""
    saved_params = [p.detach().clone() for p in params]
    saved_state = {
        p: {key: val.clone() for key, val in optimizer.state[p].items() if isinstance(val, torch.Tensor)}
        for p in params if p in optimizer.state
    }

    def restore() -> None:
        with torch.no_grad():
            for p, val in zip(params, saved_params, strict=True):
                p.copy_(val)
            for p in params:
                state = optimizer.state.get(p, {})
                before = saved_state.get(p)
                for key, val in state.items():
                    if not isinstance(val, torch.Tensor):
                        continue
                    if before is None or key not in before:
                        val.zero_()  # state created by the warm-up: a fresh Adam state is all zeros
                    else:
                        val.copy_(before[key])

    return restore


class GraphedStep:
    """``loss = loss_fn(**inputs); loss.backward(); optimizer.step()`` as one replayable CUDA graph.

    ``optimizer`` is an Adam or AdamW created with ``capturable=True``.

    ``example`` gives the inputs' shapes, dtypes and devices (and the warm-up data); calling the
    object with inputs of those shapes copies them into the graph's own tensors, replays the step and
    returns the loss tensor (overwritten by the next call: read or accumulate it before).
    """

    def __init__(
        self,
        loss_fn: Callable[..., torch.Tensor],
        optimizer: torch.optim.Optimizer,
        example: dict[str, torch.Tensor],
        warmup: int = WARMUP_STEPS,
    ) -> None:
        if not isinstance(optimizer, SUPPORTED_OPTIMIZERS):
            raise InputError(f"a captured step supports Adam and AdamW, got {type(optimizer).__name__}")
        if not all(group.get("capturable") for group in optimizer.param_groups):
            raise InputError("a captured step needs an optimizer created with capturable=True")
        if not torch.cuda.is_available():
            raise InputError("a CUDA graph needs CUDA, which is not available")
        device = next(iter(example.values())).device
        if device.type != "cuda":
            raise InputError(f"a CUDA graph needs its inputs on a CUDA device, got {device}")
        params = [p for group in optimizer.param_groups for p in group["params"]]
        self.inputs = {key: val.detach().clone() for key, val in example.items()}
        restore = _snapshot(params, optimizer)

        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for _ in range(warmup):
                optimizer.zero_grad(set_to_none=True)
                loss_fn(**self.inputs).backward()
                optimizer.step()
        torch.cuda.current_stream(device).wait_stream(side)
        restore()

        optimizer.zero_grad(set_to_none=True)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            loss = loss_fn(**self.inputs)
            loss.backward()
            optimizer.step()
        # the same memory without the autograd graph: a live graph would keep its AccumulateGrad nodes
        # (on the capture stream) for the next capture (stream mismatch warnings, extra syncs)
        self.loss = loss.detach()
        del loss

    def shapes_match(self, **inputs: torch.Tensor) -> bool:
        """Whether ``inputs`` fit the captured tensors (otherwise run the step eagerly)."""
        return all(inputs[key].shape == val.shape for key, val in self.inputs.items())

    def __call__(self, **inputs: torch.Tensor) -> torch.Tensor:
        for key, val in self.inputs.items():
            val.copy_(inputs[key])
        self.graph.replay()
        return self.loss
