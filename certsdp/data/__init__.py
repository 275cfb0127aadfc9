"""The data certsdp evaluates networks on: MNIST (:mod:`.mnist`), user input files (:mod:`.inputs`) and
the paper's own trained networks (:mod:`.paper_networks`, read from their TensorFlow checkpoints by
:mod:`.tensor_bundle`)."""

from certsdp.data.inputs import load_inputs
from certsdp.data.mnist import check_mnist, download_mnist, load_mnist, resolve_data_dir
from certsdp.data.paper_networks import (
    PAPER_NETWORKS,
    check_networks,
    download_networks,
    load_paper_network,
    resolve_nets_dir,
)

__all__ = ["PAPER_NETWORKS", "check_mnist", "check_networks", "download_mnist", "download_networks",
           "load_inputs", "load_mnist", "load_paper_network", "resolve_data_dir", "resolve_nets_dir"]
