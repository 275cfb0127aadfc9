"""Training of the paper's networks (section 6): configurations, objectives and the epoch loop.

* :mod:`.config`: :class:`TrainConfig` and the registered configurations (:func:`get_config`);
* :mod:`.regularizers`: one class per training objective (none, fro, spectral, sdp, at, lp);
* :mod:`.losses`: the differentiable losses they use; :mod:`.sdp_regularizer`: eq. 15 with LOBPCG;
* :mod:`.loop`: :func:`train`; :mod:`.state`: resume and fork; :mod:`.data`: the examples;
  :mod:`.randomness`, :mod:`.step`, :mod:`.graphed_step`, :mod:`.device`, :mod:`.evaluation`: its parts.
"""

from certsdp.training.config import CONFIGS, REGULARIZERS, TrainConfig, get_config
from certsdp.training.data import TrainingData, load_training_data
from certsdp.training.loop import train
from certsdp.training.regularizers import GRAPH_REGS, Regularizer, StepContext, make_regularizer
from certsdp.training.state import CHECKPOINT_NAME, FORK_POINT_NAME, METRICS_NAME, WEIGHTS_NAME

__all__ = [
    "CHECKPOINT_NAME",
    "CONFIGS",
    "FORK_POINT_NAME",
    "GRAPH_REGS",
    "METRICS_NAME",
    "REGULARIZERS",
    "WEIGHTS_NAME",
    "Regularizer",
    "StepContext",
    "TrainConfig",
    "TrainingData",
    "get_config",
    "load_training_data",
    "make_regularizer",
    "train",
]
