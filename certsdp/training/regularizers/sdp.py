"""``reg = "sdp"`` (SDP-NN): the SDP dual regularizer of eq. 15, its pair weights and its certificate.

The loss of one step, for the sampled class ``i`` (eq. 15)::

    objective + reg_lambda * sum_{j != i} w_ij (D lambda_max^+(M_ij - diag c_ij) + 1^T max(c_ij, 0))

with trainable dual vectors ``c_ij`` (:class:`certsdp.training.sdp_regularizer.SDPDualRegularizer`).
After every epoch the trained dual vectors are turned into certified pair bounds ``B_ij`` (eq. 16,
:meth:`SDPDualRegularizer.certificate_bounds`) and the certified error of eq. 12 at ``sdp_eps`` on
the test images is recorded, computed as rigorously as any reported certificate
(:func:`certsdp.bounds.certified_error_curve`).

Pair weights. Unweighted, all ``w_ij = 1``. Weighted (``sdp_weighted``), they start at 1 and, at the
start of every epoch ``e > 0`` with ``e % weight_refresh_epochs == 0`` (0-based; that epoch's
metrics record holds them as ``pair_weights``), are recomputed from eq. 12 with the network and
bounds as they were at the end of the previous epoch (so a run split by ``resume`` refreshes
identically): for each training example ``(x, y)`` the pair ``(i, y)`` with
``i = argmax_{j != y} f_j(x) - f_y(x) + eps/4 B_jy`` is the one that decides its certificate.
``w_ij`` is proportional to the number of examples whose deciding pair is ``{i, j}``; the counts
are symmetrised (one dual vector serves ``(i, j)`` and ``(j, i)``) and normalised to mean 1 over the
``k (k - 1)`` ordered pairs. A pair that decides no example gets weight 0 until the next refresh:
the network is then not pushed on that pair, but its dual vector keeps being optimised at full
weight.

Until the first refresh the weighted and unweighted runs are one computation; the checkpoint after
epoch ``weight_refresh_epochs`` is kept as the fork point from which the other run starts.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from certsdp.bounds import certified_error_curve
from certsdp.errors import InputError
from certsdp.training.config import TrainConfig
from certsdp.training.data import DeviceData
from certsdp.training.evaluation import json_matrix, scores
from certsdp.training.regularizers.base import Regularizer, StepContext
from certsdp.training.sdp_regularizer import SDPDualRegularizer


def _sdp_margins(scores: np.ndarray, y: np.ndarray, bounds: np.ndarray, eps: float) -> np.ndarray:
    """``f_j - f_y + eps/4 B[j, y]`` (n x k) in float64, ``-inf`` at ``j = y`` (eq. 12)."""
    n = len(y)
    B = np.where(np.isnan(bounds), 0.0, bounds)
    S = scores.astype(np.float64)
    out = S - S[np.arange(n), y][:, None] + eps / 4.0 * B[:, y].T
    out[np.arange(n), y] = -np.inf
    return out


def pair_weights_from_bounds(scores: np.ndarray, y: np.ndarray, bounds: np.ndarray, eps: float) -> np.ndarray:
    """Pair weights (k x k, zero diagonal, mean 1 off the diagonal) from the pairs attaining eq. 12.

    For each example the wrong class ``i`` maximising ``f_i - f_y + eps/4 B[i, y]`` is found; the
    count of each unordered pair ``{i, y}`` is symmetrised and normalised to mean 1 over the ordered
    pairs ``i != j``. With no examples all weights are 1.
    """
    k = bounds.shape[0]
    off = ~np.eye(k, dtype=bool)
    if len(y) == 0:
        return off.astype(np.float64)
    worst = _sdp_margins(scores, y, bounds, eps).argmax(axis=1)
    counts = np.zeros((k, k))
    np.add.at(counts, (worst, y), 1.0)
    counts = counts + counts.T
    return np.where(off, counts / counts[off].mean(), 0.0)


def unit_pair_weights(k: int, device: torch.device | None = None) -> torch.Tensor:
    """All pair weights 1 (zero diagonal), float32."""
    return torch.ones(k, k, device=device) - torch.eye(k, device=device)


class SDPRegularizer(Regularizer):
    """Eq. 15 with trainable dual vectors, (weighted) pairs, and the eq. 16 certificate per epoch."""

    name = "sdp"
    eps_field = "sdp_eps"

    def __init__(self, config: TrainConfig, dims: tuple[int, int, int], device: torch.device) -> None:
        super().__init__(config, dims, device)
        d, m, k = dims
        self.dual = SDPDualRegularizer(d, m, k, iters=config.sdp_iters).to(device)
        self.pair_weights = unit_pair_weights(k, device)

    @classmethod
    def describe(cls, config: TrainConfig) -> str:
        return f"sdp x {config.reg_lambda:g}" + (" weighted" if config.sdp_weighted else "")

    @classmethod
    def fork_epoch(cls, config: TrainConfig) -> int | None:
        """The weighted and unweighted runs are one computation until the first refresh."""
        return config.weight_refresh_epochs

    def parameters(self) -> list[nn.Parameter]:
        return list(self.dual.parameters())

    def loss(self, net: nn.Module, xb: torch.Tensor, yb: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        data = self.data_loss(net, xb, yb)
        return data + self.config.reg_lambda * self.dual(net, ctx.i, self.pair_weights[ctx.i])

    def _refreshes(self, epoch: int) -> bool:
        every = self.config.weight_refresh_epochs
        return self.config.sdp_weighted and epoch > 0 and epoch % every == 0

    def on_epoch_start(self, epoch: int, net: nn.Module, data: DeviceData,
                       history: list[dict[str, Any]]) -> dict[str, Any]:
        if not self._refreshes(epoch):
            return {}
        # the bounds of the network as it is now, certified at the end of the previous epoch
        bounds = np.array(history[-1]["sdp_bounds"], dtype=np.float64)
        net.eval()
        train_scores = scores(net, data.X).cpu().double().numpy()
        refreshed = pair_weights_from_bounds(train_scores, data.host.y, bounds, self.config.sdp_eps)
        self.pair_weights = torch.tensor(refreshed, dtype=self.pair_weights.dtype, device=self.device)
        return {"pair_weights": json_matrix(refreshed)}

    def epoch_metrics(self, net: nn.Module, data: DeviceData) -> dict[str, Any]:
        bounds = self.dual.certificate_bounds(net)
        off = ~np.eye(self.dims[2], dtype=bool)
        record: dict[str, Any] = {
            "sdp_bound_max": float(np.max(bounds[off])),
            "sdp_bound_mean": float(np.mean(bounds[off])),
            "sdp_bounds": json_matrix(bounds),
        }
        host = data.host
        if len(host.y_test):  # rigorous: float64 margins rounded up (certsdp.bounds.certify)
            record["sdp_cert_error"] = float(certified_error_curve(
                net.to_weights(), host.X_test, host.y_test, [self.config.sdp_eps], bounds)[0])
        return record

    def state_dict(self) -> dict[str, Any]:
        return {"regularizer": self.dual.state_dict(), "pair_weights": self.pair_weights.detach().cpu()}

    def load_state_dict(self, extra: dict[str, Any], source: str) -> None:
        if "log_c" not in (extra.get("regularizer") or {}):
            raise InputError(f"cannot resume {source}: it was written by an earlier SDP regularizer "
                             "(dual vectors c trained directly, which stalled); train it again")
        self.dual.load_state_dict(extra["regularizer"])
        self.pair_weights = extra["pair_weights"].to(self.device)
