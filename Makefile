# certsdp: the two commands of the README.
#   make reproduce   set up .venv, run the paper's notebooks 00-04 (PROFILE=full by default) or every
#                    notebook (PROFILE=smoke, CI's scale; NOTEBOOKS="01 05" to choose) and certify the
#                    paper's own networks (Table 1, eps = 0.1). Figures go to
#                    figures/, numbers to results/; the executed notebooks of the full profile to
#                    runs/notebooks/full/ (the committed notebooks keep the smoke outputs nbval checks;
#                    PROFILE=smoke re-executes those in place). Finished attacks are cached in
#                    runs/attack_cache/, so an interrupted run resumes where it stopped.
#   make beyond      notebooks 05-06 (beyond the paper) at full scale: hours on a CPU, resumable
#                    (per-example certificates on 10,000 / 1,000 images; notebook 06 shows the
#                    committed certsdp verify folders and prints the command of each missing one)
#   make test        set up .venv and run ruff + the whole pytest suite (what CI runs)
#   make lab         set up .venv with JupyterLab and open the notebooks (MNIST and the paper's networks
#                    found through CERTSDP_DATA and CERTSDP_NETS, exported here)
#   make networks    train (or resume) and evaluate every network of the paper that results/ lacks,
#                    NETWORKS="NT-NN LP-NN" to choose; hours on a CPU for AT-NN and SDP-NN;
#                    DEVICE=cuda trains on a GPU (AT-NN: ~7 min on an H200, steps replayed as CUDA graphs);
#                    SDP-NN-unweighted starts from SDP-NN's epoch-20 checkpoint (identical until then)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CERTSDP_DATA ?= $(abspath ../shared/data/mnist)
NETS ?= $(or $(CERTSDP_NETS),$(abspath ../shared/data/original_nets))
PROFILE ?= full
NETWORKS ?= NT-NN Fro-NN Spe-NN LP-NN SDP-NN SDP-NN-unweighted AT-NN
DEVICE ?= cpu
# fixed PDF creation dates (matplotlib honours it), so re-running a notebook leaves its PDFs unchanged
SOURCE_DATE_EPOCH ?= 0
CERTSDP_NETS := $(NETS)
export CERTSDP_DATA CERTSDP_NETS SOURCE_DATE_EPOCH
# smoke: re-execute the committed notebooks in place; any other profile: executed copies in runs/
NB_OUT := $(if $(filter smoke,$(PROFILE)),.,$(abspath runs/notebooks/$(PROFILE)))
# smoke is the notebooks' default: no -p, so papermill injects no parameters cell into the committed ones
NB_PARAMS := $(if $(filter smoke,$(PROFILE)),,-p profile $(PROFILE))
# which notebooks (by number): every one at smoke scale, the paper's (00-04) at full scale
NOTEBOOKS ?= $(if $(filter smoke,$(PROFILE)),00 01 02 03 04 05 06,00 01 02 03 04)

.PHONY: setup test reproduce beyond networks bench clean lab

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

setup: $(BIN)/python
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0  # CPU build; pyproject only asks for a range
	$(BIN)/pip install -q -e ".[test]"

test: setup
	$(BIN)/ruff check certsdp tests benchmarks
	$(BIN)/python -m pytest -q --durations=15 tests notebooks --nbval-lax --nbval-current-env

reproduce: setup
	mkdir -p results $(NB_OUT)
	@cd notebooks && total=$$(date +%s) && for nb in $(foreach n,$(NOTEBOOKS),$(n)_*.ipynb); do \
	  start=$$(date +%s); echo "[reproduce $(PROFILE)] $$nb ..."; \
	  $(abspath $(BIN))/papermill -k python3 --cwd . --no-progress-bar $$nb $(NB_OUT)/$$nb $(NB_PARAMS) \
	    > $(NB_OUT)/.$$nb.log 2>&1 || { tail -30 $(NB_OUT)/.$$nb.log; exit 1; }; \
	  echo "[reproduce $(PROFILE)] $$nb done in $$(( $$(date +%s) - start )) s"; done; \
	echo "[reproduce $(PROFILE)] all notebooks in $$(( $$(date +%s) - total )) s"
	for net in sdp_nn lp_nn; do for method in sdp lp; do \
	  $(BIN)/certsdp certify --weights $(NETS)/$$net.npz --eps 0.1 --method $$method \
	    --sdp-table results/$$net.sdp_table.npz --out results/original_$${net}_$$method.json || exit 1; \
	done; done

beyond:
	$(MAKE) reproduce PROFILE=full NOTEBOOKS="05 06"

networks: setup
	for net in $(NETWORKS); do \
	  if [ -f results/$$net/eval_eps0.1.json ]; then echo "$$net: already in results/"; continue; fi; \
	  fork=""; if [ $$net = SDP-NN-unweighted ] && [ -f results/SDP-NN/checkpoint_before_refresh.pt ]; then \
	    fork="--fork-from results/SDP-NN/checkpoint_before_refresh.pt"; fi; \
	  $(BIN)/certsdp train --config $$net --device $(DEVICE) --resume $$fork && \
	  $(BIN)/certsdp evaluate --weights results/$$net/checkpoint.pt --name $$net --attack-limit 1000 \
	    --out results/$$net/eval_eps0.1.json || exit 1; \
	done

lab: setup
	$(BIN)/pip install -q -e ".[notebooks]"
	$(BIN)/jupyter lab notebooks/

bench: setup
	$(BIN)/python benchmarks/bench_sdp.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
