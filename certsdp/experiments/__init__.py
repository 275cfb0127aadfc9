"""The paper's experiments: the logic behind Table 1 and Figures 2-4; the notebooks only drive it.

==========================  ==============================================================
``context``                 the notebooks' shared state: repository root, profile (smoke/full)
                            and its sizes, MNIST test set, attack cache, trained networks
``manifest``                ``results/networks.json`` and each network's SDP pair table
``paper``                   the numbers the paper states (Table 1, section 6)
``curves``                  certified error and attack error as eps varies (eq. 12)
``plots``                   eps axes; figures saved as PNG and PDF (``SOURCE_DATE_EPOCH``)
``data_and_networks``       notebook 00: MNIST files, the trained networks, (re)training
``table1``                  Table 1: SDP/LP certified and PGD error of SDP-NN and LP-NN
``fig2``                    Figure 2: Frobenius/spectral/SDP/LP bounds and PGD per network
``fig3``                    Figure 3: (a) SDP vs PGD per network, (b) SDP-NN vs FGSM/PGD/CW
``fig4``                    Figure 4: weighted vs unweighted SDP training; eq. 16 vs exact SDP
``evaluate``                ``certsdp evaluate``: one network's metrics, recorded in the manifest
==========================  ==============================================================

A notebook starts with ``ctx = context.load(profile)`` and passes ``ctx`` to the figure modules,
each of which returns a pandas DataFrame (also written to ``results/*.csv``) and draws its figure
(saved to ``figures/``).
"""
