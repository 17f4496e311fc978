# Benchmarks on the lent GPU machine in one call: the GPU first, then the same machine's CPU (AMX) pinned to 2 cores.
# Prepare with benchmarks/device/pack.sh; run with the device tool: `bash benchmarks/device/run.sh`, carry .gpu and .whl.
# Env: SEEDS, TRAIN_SEEDS, GROUP8=1 (also length_group_batches 8), N, CPU_EPOCHS, SKIP_GPU=1, MODEL.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false TQDM_DISABLE=1
OUT=${OUT:-/tmp/out}; mkdir -p $OUT; LOG=$OUT/all.log
SEEDS=${SEEDS:-13 14 15 16 17 18}
quiet() { tr "\r" "\n" | grep --line-buffered -v -E "batch/s\]|it/s\]|Loading weights|LOAD REPORT|MISSING|^Key |^-----|^Notes|^$|newly initialized|[Ww]arn|qweight|train_runtime" | tee -a $LOG; }
nvidia-smi --query-gpu=name,memory.total,clocks.sm --format=csv 2>&1 | tee -a $LOG
python3 -c "import torch, transformers; print(torch.__version__, transformers.__version__)" | tee -a $LOG
python3 benchmarks/device/fp16.py unpack .gpu/minilm16 /tmp/minilm
cd benchmarks
if [ -z "$SKIP_GPU" ]; then
python3 bench_train.py --epochs 3 --seeds ${TRAIN_SEEDS:-$SEEDS} --pretrained /tmp/minilm --split-file ../.gpu/split.jsonl --save-model /tmp/ft --name train-gpu 2>&1 | quiet
[ -n "$GROUP8" ] && python3 bench_train.py --epochs 3 --seeds $SEEDS --pretrained /tmp/minilm --split-file ../.gpu/split.jsonl --length-group 8 --name train-gpu-g8 2>&1 | quiet
python3 bench_predict.py --model /tmp/ft --texts ../.gpu/sentences.txt --n ${N:-5000} --name predict-gpu 2>&1 | quiet
fi
cp results/*.json $OUT/ 2>/dev/null
MODEL=${MODEL:-/tmp/ft}
echo "=== CPU, 2 cores ($(taskset -c 0,1 nproc 2>/dev/null || echo no taskset))" | tee -a $LOG
export CUDA_VISIBLE_DEVICES= OMP_NUM_THREADS=2
PIN="taskset -c 0,1"; $PIN true 2>/dev/null || PIN=""
$PIN python3 bench_predict.py --model $MODEL --texts ../.gpu/sentences.txt --n ${N:-5000} --name predict-cpu2 2>&1 | quiet
cp results/predict-cpu2.json $OUT/ 2>/dev/null
$PIN python3 bench_train.py --epochs ${CPU_EPOCHS:-3} --seeds 13 --pretrained /tmp/minilm --split-file ../.gpu/split.jsonl --name train-cpu2 2>&1 | quiet
cp results/train-cpu2.json $OUT/ 2>/dev/null
ls $OUT
