# Two commands on a fresh machine: `make run` and `make test`. Each sets up .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CORES  ?= all

.PHONY: run test test-cluster lint dryrun report clean venv

# The venv is rebuilt when the dependency list changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

venv: $(STAMP)

# The embedded default (digits + hapt), offline, on the CPU.
run: $(STAMP)
	$(BIN)/snakemake --cores $(CORES)

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The tiny DAG on a real single-node SLURM cluster started on this machine (installs slurm-wlm, munge,
# slurm-client with apt when missing; needs root or sudo); stops the daemons it started.
test-cluster: $(STAMP)
	tests/cluster/slurm-cluster.sh $(BIN)/python -m pytest -q -s --durations=5 tests/cluster

lint: $(STAMP)
	$(BIN)/snakemake --lint

dryrun: $(STAMP)
	$(BIN)/snakemake -n

report: $(STAMP)
	$(BIN)/snakemake --report results/report.html

clean:
	rm -rf results .snakemake
