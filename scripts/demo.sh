#!/bin/sh
# `make demo`: the README's worked example, one command after another.
#   1. make the example model and data (PyTorch on scikit-learn's digits -> ONNX, 100k rows)
#   2. run the example nightly job under mpirun with 2 ranks
#   3. look up a few ids, and check them against PyTorch's own answers
#   4. train a digits classifier with precast train, predict with it, look up two ids
# Everything is written under var/example/ and var/train/ (ignored by git).
set -eu
cd "$(dirname "$0")/.."
export OMPI_ALLOW_RUN_AS_ROOT=${OMPI_ALLOW_RUN_AS_ROOT:-1}
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}
# One machine: Open MPI's shared-memory transport (pml ob1 + btl vader). Left to choose, it
# probes UCX for network devices first, which costs 0.2 s of every start on a machine without
# any (MPI_Init + Finalize: 0.32 s against 0.12 s here). Clusters keep their own setting.
export OMPI_MCA_pml=${OMPI_MCA_pml:-ob1}
export OPENBLAS_NUM_THREADS=1

set -x
scripts/make-example.sh
mpirun --oversubscribe -np 2 bin/precast run jobs/examples/example.ini
bin/precast get var/example/table u000000 u000001 u042042 no-such-user
bin/precast inspect var/example/model.onnx
# 4. train a digits model with precast train, then predict with it (docs/TRAINING.md)
/usr/bin/python3 scripts/make_train_data.py digits var/train
mpirun --oversubscribe -np 2 bin/precast train jobs/examples/train-digits.ini
mpirun --oversubscribe -np 2 bin/precast run jobs/examples/train-digits-run.ini
bin/precast get var/train/digits/table d1496 d0188
set +x

# The lookups must match what PyTorch itself predicts for the same rows.
tail -n +2 var/example/expected.csv | cut -d, -f1 | bin/precast get var/example/table - >var/example/lookups.jsonl
/usr/bin/python3 - <<'PYEOF'
import csv, json
labels = [l.strip() for l in open("var/example/labels.txt")]
want = {r["user_id"]: r for r in csv.DictReader(open("var/example/expected.csv"))}
got = [json.loads(l) for l in open("var/example/lookups.jsonl")]
bad = [g["key"] for g in got if not g["found"]
       or g["value"]["label"] != labels[int(want[g["key"]]["label_index"])]
       or abs(g["value"]["p"] - float(want[g["key"]]["p"])) > 1e-4]
print("demo: %d of %d lookups agree with PyTorch" % (len(got) - len(bad), len(got)))
if bad:
    raise SystemExit("demo: differ from PyTorch: %s" % bad)
PYEOF
