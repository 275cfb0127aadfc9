"""What every notebook shares: the repository root, the profile and its sizes, MNIST, the networks.

A notebook's first code cell is ``ctx = context.load(profile)``. The :class:`Context` it returns
knows where things are (repository root, ``results/``, ``figures/``, the attack cache
``runs/attack_cache/``, the paper's own networks in ``$CERTSDP_NETS``), how much to compute
(:class:`Profile`: ``smoke`` for CI, ``full`` for the paper's scale), the MNIST test set, and the
trained networks of ``results/networks.json`` (:mod:`certsdp.experiments.manifest`).

Every path a notebook prints goes through :meth:`Context.rel`, relative to the repository root, so
committed outputs hold no machine's absolute paths.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from certsdp.atomic import write_text
from certsdp.data import load_mnist, resolve_data_dir
from certsdp.errors import InputError
from certsdp.experiments.manifest import NETWORK_NAMES, TrainedNetwork, available, sdp_table, train_command
from certsdp.network import Weights
from certsdp.network.torch_model import TwoLayerNet
from certsdp.sdp import PairTable

#: certified error curves: 17 radii from 0 to 0.2 (Figures 3 and 4; certificates are cheap)
CERT_EPS: tuple[float, ...] = tuple(float(e) for e in np.round(np.linspace(0, 0.2, 17), 4))
#: the same for Figure 4's demo networks, which are far less robust: 21 radii from 0 to 0.1
DEMO_CERT_EPS: tuple[float, ...] = tuple(float(e) for e in np.round(np.linspace(0, 0.1, 21), 4))
#: the radius of Table 1 and Figure 2
EPS = 0.1
#: the pixel range; the paper's attack numbers are reproduced by attacks clipped to it
PIXEL_BOX = (0.0, 1.0)
NETS_ENV_VAR = "CERTSDP_NETS"


@dataclass(frozen=True)
class Attacks:
    """Which test images are attacked (the first ``n``) and at which radii ``eps``."""

    n: int
    eps: tuple[float, ...]


@dataclass(frozen=True)
class Profile:
    """How much a notebook computes. Certificates always use all 10,000 test images.

    ``solve_tables``: solve every SDP pair table again (``full``) instead of loading the committed
    ``results/NAME/sdp_table.npz`` and re-certifying each stored dual point (``smoke``).
    ``recompute_duals``: recompute Figure 4(b)'s training-time pair bounds (eq. 16) from the
    checkpoint instead of reading those training recorded. ``demo_training``: notebook 00 trains a
    tiny network to show the training path.
    """

    name: str
    table1: Attacks
    fig2_fig3a: Attacks
    fig3b: Attacks
    fig4: Attacks
    fig4_demo: Attacks
    solve_tables: bool
    recompute_duals: bool
    demo_training: bool


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        table1=Attacks(200, (EPS,)),
        fig2_fig3a=Attacks(100, (0.05, 0.1, 0.15)),
        fig3b=Attacks(200, (0.025, 0.05, 0.1, 0.15)),
        fig4=Attacks(200, (0.025, 0.05, 0.1, 0.15)),
        fig4_demo=Attacks(200, (0.01, 0.02, 0.05, 0.1)),
        solve_tables=False, recompute_duals=False, demo_training=True),
    "full": Profile(
        name="full",
        table1=Attacks(10000, (EPS,)),
        fig2_fig3a=Attacks(10000, (0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.175, 0.2)),
        fig3b=Attacks(10000, (0.0125, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2)),
        fig4=Attacks(10000, (0.0125, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2)),
        fig4_demo=Attacks(10000, (0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1)),
        solve_tables=True, recompute_duals=True, demo_training=False),
}


def get_profile(name: str) -> Profile:
    """The profile called ``name``; :class:`InputError` for any other name."""
    if name not in PROFILES:
        raise InputError(f"profile must be one of {', '.join(map(repr, PROFILES))}, got {name!r}")
    return PROFILES[name]


def find_root(start: str | Path | None = None) -> Path:
    """The repository root: the first of ``start`` (default: the working folder) and its parents that
    holds ``pyproject.toml`` and the ``certsdp`` package; ``start`` itself if none does."""
    start = Path.cwd() if start is None else Path(start)
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "certsdp").is_dir():
            return folder
    return start


@dataclass
class Network:
    """A trained network ready for the figures: float64 weights, SDP pair table, float32 torch twin."""

    name: str
    weights: Weights
    table: PairTable
    net: TwoLayerNet


@dataclass
class Context:
    """The notebooks' shared state; build it with :func:`load`."""

    profile: Profile
    root: Path
    nets_dir: Path  # the paper's own networks (sdp_nn.npz, lp_nn.npz)

    @property
    def results(self) -> Path:
        return self.root / "results"

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    @property
    def cache_dir(self) -> Path:
        """Finished attacks, reused by a re-run (:mod:`certsdp.attacks.cache`)."""
        return self.root / "runs" / "attack_cache"

    @cached_property
    def test_set(self) -> tuple[np.ndarray, np.ndarray]:
        """The 10,000 MNIST test images (float32 in [0, 1], read-only) and labels, loaded on first use."""
        return load_mnist("test")

    def rel(self, path: str | Path) -> str:
        """``path`` relative to the repository root (with ``..`` where it lies outside)."""
        return os.path.relpath(Path(path).resolve(), self.root)

    def paper_net(self, file: str) -> Path:
        """A network of the paper's own (``sdp_nn.npz``, ``lp_nn.npz``); InputError if it is absent."""
        path = self.nets_dir / file
        if not path.is_file():
            raise InputError(f"the paper's networks are not in {self.rel(self.nets_dir)}: set "
                             f"{NETS_ENV_VAR} to the folder holding sdp_nn.npz and lp_nn.npz")
        return path

    def trained(self, names: str | tuple[str, ...] | list[str] = NETWORK_NAMES,
                report: bool = True) -> dict[str, TrainedNetwork]:
        """The trained networks among ``names`` (a list or a comma-separated string), in that order.

        With ``report``, prints the missing ones with the command that trains each.
        """
        if isinstance(names, str):
            names = [name.strip() for name in names.split(",") if name.strip()]
        found, missing = available(self.root, list(names))
        if report:
            for name in missing:
                print(f"not trained yet: {name}  ->  {train_command(name)}")
        return found

    def load_networks(self, names: str | tuple[str, ...] | list[str] = NETWORK_NAMES) -> list[Network]:
        """The trained networks among ``names`` (:meth:`trained`) with their pair tables.

        The ``smoke`` profile loads each committed ``results/NAME/sdp_table.npz`` and re-certifies
        every stored dual point; ``full`` solves the 45 pair SDPs again (the file left as it is).
        """
        out = []
        for name, entry in self.trained(names).items():
            weights = entry.load_weights()
            table = sdp_table(entry, weights, solve=self.profile.solve_tables)
            out.append(Network(name, weights, table, TwoLayerNet.from_weights(weights)))
        return out

    def write_csv(self, frame: pd.DataFrame, name: str, index: bool = True) -> str:
        """Write ``frame`` to ``results/name`` (6 significant digits, atomically); its relative path."""
        path = self.results / name
        write_text(path, frame.to_csv(index=index, float_format="%.6g"), "results table")
        return self.rel(path)

    def __str__(self) -> str:
        return (f"profile {self.profile.name}; MNIST in {self.rel(resolve_data_dir())}; the paper's networks "
                f"in {self.rel(self.nets_dir)} (paths relative to the repository root)")


def load(profile: str = "smoke", root: str | Path | None = None) -> Context:
    """The context of a notebook run with ``profile`` (``"smoke"`` or ``"full"``).

    ``root`` defaults to :func:`find_root` of the working folder; the paper's networks are read from
    ``$CERTSDP_NETS``, else ``<root>/../shared/data/original_nets``.
    """
    prof = get_profile(profile)
    root = find_root(root)
    env = os.environ.get(NETS_ENV_VAR, "")
    nets_dir = Path(env).expanduser() if env else root.parent / "shared" / "data" / "original_nets"
    return Context(profile=prof, root=root, nets_dir=nets_dir)
