# Each target sets itself up: a .venv with the CPU build of torch and the project installed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEVSET := ../shared/devset/real-news-dev.jsonl
PYTEST_ARGS ?=

.PHONY: setup train baseline data test test-fast ui clean bench

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first and pinned: 2.13.0 is the CPU build on local disk; an unpinned torch pulls a multi-GB CUDA build
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev,onnx]"
	touch $(STAMP)

data: $(STAMP)
	$(BIN)/trainer build-data --config configs/data/bundled.yaml

# The main job: build the bundled dataset, fine-tune MiniLM, evaluate, print metrics, folder and run.
train: $(STAMP)
	@start=$$(date +%s); \
	$(BIN)/trainer build-data --config configs/data/bundled.yaml && \
	$(BIN)/trainer train --config configs/default.yaml --overwrite && \
	$(BIN)/trainer evaluate --model models/minilm-bundled --split test && \
	if [ -f $(DEVSET) ]; then $(BIN)/trainer evaluate --model models/minilm-bundled --data $(DEVSET); fi; \
	status=$$?; echo "make train: $$(( $$(date +%s) - start ))s"; exit $$status

baseline: $(STAMP)
	$(BIN)/trainer train --config configs/baseline-tfidf.yaml --overwrite
	if [ -f $(DEVSET) ]; then $(BIN)/trainer evaluate --model models/tfidf-bundled --data $(DEVSET); fi

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

ui: $(STAMP)
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db

clean:
	rm -rf data/processed models mlruns mlartifacts mlflow.db

# Speed benchmarks (each prints both sides and the ratio; results in benchmarks/results/)
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_build.py && $(BIN)/python benchmarks/bench_predict.py && \
	$(BIN)/python benchmarks/bench_train.py --epochs 3 --seeds 13 14 15 && $(BIN)/python benchmarks/bench_memory.py
