#!/bin/bash
# make bench-train (issue 9): precast train's training throughput beside PyTorch, and sampled
# softmax beside the full softmax on a 20,000-class task.
#
#  1. rows/s of the example architecture (64 -> 256 -> 256 -> 10, Adam, batch 64 and 512) on 100,000
#     noisy digits rows, 3 epochs: precast train on 1 and 2 ranks, PyTorch on one thread
#     (torch.set_num_threads(1), OPENBLAS_NUM_THREADS=1), timed over the training loop only
#     (precast: the report's rows_per_second, which leaves out validation and loading).
#  2. 100,000 rows of a 20,000-class task (32 features -> dense 128 relu -> head), 3 epochs,
#     batch 256, 2 ranks: full softmax against sampled softmax (1,024 log-uniform negatives):
#     seconds per step and top-10 recall on 10,000 test rows.
# Data and models go to var/bench-train/ (ignored by git). Takes about 10 minutes on 2 cores
# (the full softmax over 20,000 classes is most of it).
set -eu
cd "$(dirname "$0")/.."
export OMPI_ALLOW_RUN_AS_ROOT=${OMPI_ALLOW_RUN_AS_ROOT:-1}
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
PY=/usr/bin/python3
B=var/bench-train
mkdir -p "$B"
[ -f "$B/bench-train.csv" ] || $PY scripts/make_train_data.py bench "$B" --rows 100000
[ -f "$B/classes-train.csv" ] || $PY scripts/make_train_data.py classes "$B" --rows 100000 --classes 20000

field() { $PY -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"; }

cat >"$B/mlp.ini" <<EOF
[data]
paths = bench-train.csv
id_column = id
label_column = label
validation = 0
[model]
layers = dense 256 relu, dense 256 relu
[train]
epochs = 3
batch_rows = 64
learning_rate = 0.001
[output]
model = mlp/model.onnx
plot =
EOF
# The example's batch (64), then a larger one (512), where a step's compute outweighs the
# all-reduce and the optimiser pass that every rank makes.
for bs in 64 512; do
    echo "== training throughput: 64 -> 256 -> 256 -> 10, Adam, batch $bs, 100,000 rows, 3 epochs"
    for np in 1 2; do
        mpirun --oversubscribe -np $np bin/precast train "$B/mlp.ini" --set train.batch_rows=$bs \
            --set output.model=mlp$bs-$np/model.onnx >/dev/null 2>"$B/mlp$bs-$np.log"
        printf 'precast train -np %d   rows/s %8.0f\n' "$np" "$(field "$B/mlp$bs-$np/model.report.json" "j['train']['rows_per_second']")"
    done
    printf 'pytorch (1 thread)   '
    $PY scripts/bench_train_torch.py "$B/bench-train.csv" --layers 256,256 --batch $bs --epochs 3 --lr 0.001
done

cat >"$B/classes.ini" <<EOF
[data]
paths = classes-train.csv
id_column = id
label_column = label
labels = classes.labels
validation = 0
test = classes-test.csv
[model]
layers = dense 128 relu
sampled = 1024
sampler = log_uniform
[train]
epochs = 3
batch_rows = 256
learning_rate = 0.003
[output]
model = classes/full.onnx
plot =
EOF
echo
echo "== 20,000 classes: full softmax vs sampled softmax (1,024 log-uniform negatives), 2 ranks, 3 epochs"
# NAME HEAD EPOCHS [--set ...]: one run, then its step time and test figures.
classes_run() {
    local name=$1 head=$2 epochs=$3; shift 3
    mpirun --oversubscribe -np 2 bin/precast train "$B/classes.ini" --set model.head=$head --set train.epochs=$epochs \
        --set output.model=classes/$name.onnx "$@" >/dev/null 2>"$B/$name.log"
    local rep="$B/classes/$name.report.json" steps
    steps=$($PY -c "print(sum(1 for _ in open('$B/classes/$name.curves.csv')) - 1)")
    printf '%-22s %2d epochs %7.1f ms/step (%.0f rows/s)  test %s\n' "$name" "$epochs" \
        "$($PY -c "import json; j=json.load(open('$rep')); print(1000*$epochs*j['data']['train_rows']/j['train']['rows_per_second']/$steps)")" \
        "$(field "$rep" "j['train']['rows_per_second']")" \
        "$(field "$rep" "'top-10 recall %.4f, top-1 accuracy %.4f' % (j['final']['test_top10_recall'], j['final']['test_accuracy'])")"
}
classes_run softmax softmax 3
classes_run sampled_softmax sampled_softmax 3
# lazy_sparse: Adam moves only the head rows a step used (the dense update of all 2.56 million
# head weights is most of a sampled step otherwise); cheaper steps, so more epochs
classes_run sampled_lazy sampled_softmax 6 --set train.lazy_sparse=true
