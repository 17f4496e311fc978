# Prepare what benchmarks/device/run.sh needs on the lent GPU machine. Run here, from the repository root:
#   bash benchmarks/device/pack.sh
# then, through the device tool: command `bash benchmarks/device/run.sh`, carry [".gpu", ".whl"].
set -e
mkdir -p .git/info .gpu .whl
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || printf '/.gpu/\n/.whl/\n' >> .git/info/exclude
.venv/bin/python benchmarks/bench_predict.py --n 5000 --write-texts .gpu/sentences.txt  # real PolNeAR sentences
.venv/bin/python benchmarks/bench_train.py --write-split .gpu/split.jsonl              # the bundled train/validation split
.venv/bin/python benchmarks/device/fp16.py pack .gpu/minilm16
# The machine's image has torch, transformers, scikit-learn and onnxruntime (Python 3.12) but not these:
v() { .venv/bin/python -c "import importlib.metadata as m; print(m.version('$1'))"; }
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 -d .whl \
  pydantic==$(v pydantic) pydantic_core==$(v pydantic_core) annotated-types==$(v annotated-types) \
  typing-inspection==$(v typing-inspection) typing_extensions==$(v typing_extensions) syntok==$(v syntok)
du -sh .gpu .whl
