"""The arrays a training run learns from and is evaluated on, loaded outside the epoch loop.

:func:`load_training_data` reads MNIST (the paper's data); any other data set can be passed to
:func:`certsdp.training.loop.train` as a :class:`TrainingData`. The network's input dimension and
number of classes come from here, not from constants.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from certsdp.data import load_mnist
from certsdp.data.mnist import NUM_CLASSES as MNIST_CLASSES
from certsdp.errors import InputError
from certsdp.training.config import TrainConfig
from certsdp.validation import check_int


def _check_split(name: str, X: np.ndarray, y: np.ndarray, num_classes: int) -> None:
    if not isinstance(X, np.ndarray) or X.ndim != 2 or not np.issubdtype(X.dtype, np.floating):
        raise InputError(f"{name} images must be a 2-d float array (examples x features), "
                         f"got {getattr(X, 'shape', type(X).__name__)}")
    if not isinstance(y, np.ndarray) or y.shape != (len(X),) or not np.issubdtype(y.dtype, np.integer):
        raise InputError(f"{name} labels must be an integer array of shape ({len(X)},)")
    if not np.all(np.isfinite(X)):
        raise InputError(f"{name} images contain NaN or infinite values")
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise InputError(f"{name} labels must lie in 0..{num_classes - 1}")


@dataclass(frozen=True)
class TrainingData:
    """Training and test examples (numpy, as loaded) and the number of classes; checked on creation.

    ``X`` (n, d) and ``X_test`` (n_test, d) are float arrays, ``y`` and ``y_test`` integer labels in
    ``0 .. num_classes - 1``. The test split may be empty (no test error is then recorded).
    """

    X: np.ndarray
    y: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    num_classes: int

    def __post_init__(self) -> None:
        check_int("num_classes", self.num_classes, minimum=2)
        _check_split("training", self.X, self.y, self.num_classes)
        _check_split("test", self.X_test, self.y_test, self.num_classes)
        if len(self.y) == 0:
            raise InputError("no training examples")
        if self.X_test.shape[1] != self.X.shape[1]:
            raise InputError(f"test images have {self.X_test.shape[1]} features, training images "
                             f"{self.X.shape[1]}")

    @property
    def dim(self) -> int:
        """The input dimension ``d``."""
        return int(self.X.shape[1])

    def limited(self, config: TrainConfig) -> TrainingData:
        """The first ``config.train_limit`` training and ``config.eval_limit`` test examples."""
        n, n_test = config.train_limit, config.eval_limit
        if (n is None or n >= len(self.y)) and (n_test is None or n_test >= len(self.y_test)):
            return self
        return TrainingData(self.X[:n], self.y[:n], self.X_test[:n_test], self.y_test[:n_test],
                            self.num_classes)


def load_training_data(config: TrainConfig, data_dir: str | Path | None = None) -> TrainingData:
    """MNIST: the first ``train_limit`` training and ``eval_limit`` test images of ``config``."""
    X, y = load_mnist("train", data_dir=data_dir, limit=config.train_limit)
    X_test, y_test = load_mnist("test", data_dir=data_dir, limit=config.eval_limit)
    return TrainingData(X, y, X_test, y_test, MNIST_CLASSES)


@dataclass(frozen=True)
class DeviceData:
    """:class:`TrainingData` with the tensors the loop uses on its device (numpy kept for the
    certificates, which are computed in float64 numpy)."""

    host: TrainingData
    X: torch.Tensor
    y: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor

    @classmethod
    def on(cls, data: TrainingData, device: torch.device) -> DeviceData:
        return cls(data, torch.tensor(data.X, device=device), torch.tensor(data.y, device=device),
                   torch.tensor(data.X_test, device=device), torch.tensor(data.y_test, device=device))

    @property
    def dims(self) -> tuple[int, int]:
        """``(d, k)``: input dimension and number of classes."""
        return self.host.dim, self.host.num_classes
