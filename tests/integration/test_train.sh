#!/bin/bash
# precast train (issue 9), end to end under mpirun: the digits example reaches 96 % on the
# held-back fifth and `precast run` with the exported model predicts what the trainer did;
# -np 1 and -np 2 agree; deterministic runs give identical bytes whatever the rank count; each
# diagnostic is provoked and named; embeddings, LIBSVM, multilabel and regression train and
# export; bad jobs and rows fail with their file and line.
. "$(dirname "$0")/lib.sh"

D=$TMP/data
"$PY" "$ROOT/scripts/make_train_data.py" digits "$D" || { not_ok "train data" "make_train_data.py digits failed"; exit 0; }
"$PY" "$ROOT/scripts/make_train_data.py" tiny "$D"
"$PY" "$ROOT/scripts/make_train_data.py" embed "$D"
# The example job, with its paths pointed at this test's data.
JOB=$TMP/digits.ini
sed -e "s|../../var/train/digits-|data/digits-|" -e "s|../../var/train/digits/|digits/|" \
    "$ROOT/jobs/examples/train-digits.ini" >"$JOB"

# json FILE EXPR: evaluates a Python expression on the parsed JSON file `j`.
json() { "$PY" -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"; }

# train NP NAME ARGS...: trains the example job into $TMP/NAME/model.onnx.
train() {
    local np=$1 name=$2; shift 2
    run_np "$np" train "$JOB" --set "output.model=$name/model.onnx" --set "output.predictions=$name/pred.csv" "$@"
}

# ---- the example job on 2 ranks ---------------------------------------------------------------
if train 2 np2; then ok "train digits -np 2"; else not_ok "train digits -np 2" "$(tail -3 "$TMP/err")"; fi
M=$TMP/np2
grep -q "epoch 1/30  train loss" "$TMP/err" && grep -q "val accuracy" "$TMP/err" && grep -q "rows/s" "$TMP/err" \
    && ok "progress line per epoch" || not_ok "progress line per epoch" "$(head -3 "$TMP/err")"
acc=$(json "$M/model.report.json" "j['final']['test_accuracy']")
"$PY" -c "import sys; sys.exit(0 if float('$acc') >= 0.96 else 1)" 2>/dev/null \
    && ok "digits held-back fifth: accuracy $acc >= 0.96" || not_ok "digits accuracy" "test accuracy $acc < 0.96"
diags=$(json "$M/model.report.json" "len(j['diagnostics'])")
[ "$diags" = 0 ] && ok "healthy run: no diagnostic" || not_ok "healthy run: no diagnostic" "$(json "$M/model.report.json" "j['diagnostics']")"
"$PY" -c "import onnx,sys; m=onnx.load(sys.argv[1]); onnx.checker.check_model(m, full_check=True)" "$M/model.onnx" \
    && ok "onnx.checker accepts model.onnx" || not_ok "onnx.checker" "rejected"
"$PRECAST" inspect "$M/model.onnx" >"$TMP/inspect" 2>&1 && grep -q "supported: yes" "$TMP/inspect" \
    && ok "precast inspect loads model.onnx" || not_ok "precast inspect" "$(tail -2 "$TMP/inspect")"
[ "$(paste -sd, "$M/model.labels")" = "0,1,2,3,4,5,6,7,8,9" ] && ok "model.labels" || not_ok "model.labels" "$(head -3 "$M/model.labels")"
head -c 8 "$M/loss.png" | od -An -c | grep -q "P   N   G" && ok "loss.png" || not_ok "loss.png" "not a PNG"
"$PY" - "$M/model.curves.csv" "$M/model.report.json" <<'PYEOF' && ok "curves CSV: a line per step, norms per layer" || not_ok "curves CSV" "see above"
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1])))
rep = json.load(open(sys.argv[2]))
cols = rows[0].keys()
need = ["step", "epoch", "loss", "lr", "grad_norm", "grad_norm.dense0", "grad_norm.dense1", "grad_norm.head",
        "dead.dense0", "dead.dense1", "val_loss", "val_metric"]
missing = [c for c in need if c not in cols]
epochs = rep["train"]["epochs_run"]
steps_per_epoch = -(-rep["data"]["train_rows"] // rep["train"]["batch_rows"])
if missing or len(rows) != epochs * steps_per_epoch or sum(1 for r in rows if r["val_loss"]) != epochs:
    print("curves: missing %s, %d rows for %d epochs" % (missing, len(rows), epochs)); sys.exit(1)
PYEOF
"$PY" - "$M/model.stats.json" <<'PYEOF' && ok "model.stats.json: 64 features with histograms" || not_ok "model.stats.json" "see above"
import json, sys
s = json.load(open(sys.argv[1]))
d = s["dense"]
ok = len(d) == 64 and d[10]["name"] == "p10" and len(d[10]["hist"]) == 20 and sum(d[10]["hist"]) == d[10]["count"] == 1437
sys.exit(0 if ok else 1)
PYEOF

# ---- precast run with the exported model gives the trainer's own predictions ---------------------
cat >"$TMP/run.ini" <<EOF
[model]
path = np2/model.onnx
labels = np2/model.labels
[input]
paths = data/digits-test-features.csv
id_column = id
[output]
table = np2/table
head = softmax_topk
top_k = 1
EOF
if run_np 2 run "$TMP/run.ini"; then
    cut -d, -f1 "$D/digits-test-features.csv" | tail -n +2 | "$PRECAST" get "$M/table" - >"$TMP/lookups.jsonl"
    "$PY" - "$M/pred.csv" "$TMP/lookups.jsonl" "$D/digits-test.csv" <<'PYEOF' && ok "precast run = trainer's predictions, same accuracy" || not_ok "precast run predictions" "see above"
import csv, json, sys
pred = {r["key"]: r for r in csv.DictReader(open(sys.argv[1]))}
got = {}
for line in open(sys.argv[2]):
    g = json.loads(line)
    got[g["key"]] = g["value"]
truth = {r["id"]: r["label"] for r in csv.DictReader(open(sys.argv[3]))}
bad = [k for k in truth if k not in got or got[k]["label"] != pred[k]["label"] or abs(got[k]["p"] - float(pred[k]["p"])) > 1e-5]
acc = sum(got[k]["label"] == truth[k] for k in truth) / len(truth)
print("precast run: %d rows, %d differ from the trainer, accuracy %.4f" % (len(truth), len(bad), acc))
sys.exit(0 if not bad and acc >= 0.96 and len(pred) == len(truth) else 1)
PYEOF
else
    not_ok "precast run with the trained model" "$(tail -2 "$TMP/err")"
fi

# ---- -np 1 reaches the same figures within noise ------------------------------------------------
if train 1 np1; then
    a1=$(json "$TMP/np1/model.report.json" "j['final']['test_accuracy']")
    "$PY" -c "import sys; sys.exit(0 if abs($a1 - $acc) <= 0.02 else 1)" \
        && ok "-np 1 ($a1) and -np 2 ($acc) test accuracy within 2 points" || not_ok "-np 1 vs -np 2" "$a1 vs $acc"
else
    not_ok "train digits -np 1" "$(tail -3 "$TMP/err")"
fi

# ---- deterministic: the same bytes run to run and across rank counts ------------------------------
DET=(--set train.deterministic=true --set train.epochs=3 --set train.early_stopping=0 --set data.test=
     --set "model.layers=dense 64 relu, dropout 0.2, batchnorm, dense 64 relu")
train 1 detA "${DET[@]}" && train 1 detB "${DET[@]}" && train 2 detC "${DET[@]}"
if cmp -s "$TMP/detA/model.onnx" "$TMP/detB/model.onnx"; then ok "deterministic: identical model bytes on two runs"
else not_ok "deterministic: two runs" "model.onnx differs"; fi
if cmp -s "$TMP/detA/model.onnx" "$TMP/detC/model.onnx"; then ok "deterministic: identical model bytes on -np 1 and -np 2"
else not_ok "deterministic: -np 1 vs -np 2" "model.onnx differs"; fi

# ---- each diagnostic provoked on purpose --------------------------------------------------------
# provoke NAME DIAGNOSTIC ARGS...: trains on one rank and expects the report to name DIAGNOSTIC.
provoke() {
    local name=$1 want=$2; shift 2
    if ! train 1 "$name" --set output.predictions= --set data.test= --set train.early_stopping=0 "$@"; then
        not_ok "diagnostic $want" "training failed: $(tail -2 "$TMP/err")"
        return
    fi
    local names
    names=$(json "$TMP/$name/model.report.json" "' '.join(d['name'] for d in j['diagnostics'])")
    if [[ " $names " == *" $want "* ]] && grep -q "$want" "$TMP/$name/model.report.txt"; then
        ok "diagnostic $want provoked ($names)"
    else
        not_ok "diagnostic $want" "report names: '$names'"
    fi
}
provoke lr10 diverging --set train.learning_rate=10 --set train.epochs=4
provoke lr1e7 not_decreasing --set train.learning_rate=1e-7 --set train.epochs=3 --set train.schedule=constant
provoke sigmoid20 vanishing_gradients --set "model.layers=dense 32 sigmoid x20" --set train.epochs=3
provoke deadrelu dead_relu --set model.init_bias=-5 --set train.epochs=3
provoke jumpy jumping --set train.learning_rate=0.02 --set train.batch_rows=8 --set train.epochs=5 --set train.schedule=constant
provoke deepsgd exploding_gradients --set train.optimizer=sgd --set train.learning_rate=0.1 --set train.momentum=0.9 \
    --set "model.layers=dense 64 relu x6" --set train.epochs=3 --set train.schedule=constant
provoke tiny overfitting --set data.paths=data/tiny-train.csv --set data.validation=0.5 --set train.epochs=25 \
    --set train.batch_rows=8 --set train.schedule=constant --set train.l2=0 --set train.learning_rate=0.003

# ---- embeddings (an id and a bag column), binary head; precast run reads the same ids ------------
cat >"$TMP/embed.ini" <<EOF
[data]
paths = data/embed-train.csv
id_column = id
label_column = label
label_kind = binary
[model]
embed.user = 8
embed.items = 4
layers = dense 32 relu
[train]
epochs = 6
learning_rate = 0.01
batch_rows = 64
[output]
model = embed/model.onnx
predictions = embed/pred.csv
EOF
cat >"$TMP/run-embed.ini" <<EOF
[model]
path = embed/model.onnx
[input]
paths = data/embed-train.csv
id_column = id
map.features = a,b,c,d
map.user = user
map.items = items
[output]
table = embed/table
head = raw
EOF
if run_np 2 train "$TMP/embed.ini" && run_np 1 run "$TMP/run-embed.ini"; then
    cut -d, -f1 "$TMP/embed/pred.csv" | tail -n +2 | "$PRECAST" get "$TMP/embed/table" - >"$TMP/embed.jsonl"
    "$PY" - "$TMP/embed/pred.csv" "$TMP/embed.jsonl" "$TMP/embed/model.report.json" <<'PYEOF' && ok "embeddings: trained, exported, same scores through precast run" || not_ok "embeddings" "see above"
import csv, json, sys
pred = {r[0]: float(r[1]) for r in list(csv.reader(open(sys.argv[1])))[1:]}
got = {json.loads(l)["key"]: json.loads(l)["value"]["scores"][0] for l in open(sys.argv[2])}
acc = json.load(open(sys.argv[3]))["epochs"][-1]["val_metric"]
bad = [k for k in pred if abs(pred[k] - got.get(k, -1)) > 1e-5]
print("embeddings: %d validation rows, %d differ, val accuracy %.3f" % (len(pred), len(bad), acc))
sys.exit(0 if pred and not bad and acc > 0.8 else 1)
PYEOF
else
    not_ok "embeddings" "$(tail -3 "$TMP/err")"
fi
# deterministic with sparse (embedding) gradients: the same bytes on 1 and 3 ranks
EDET=(--set train.deterministic=true --set train.epochs=2 --set output.predictions=)
if run_np 1 train "$TMP/embed.ini" "${EDET[@]}" --set output.model=edet1/model.onnx &&
   run_np 3 train "$TMP/embed.ini" "${EDET[@]}" --set output.model=edet3/model.onnx &&
   cmp -s "$TMP/edet1/model.onnx" "$TMP/edet3/model.onnx"; then
    ok "deterministic with embeddings: identical bytes on -np 1 and -np 3"
else
    not_ok "deterministic with embeddings" "$(tail -2 "$TMP/err")"
fi

# ---- LIBSVM rows (label first), regression and multilabel ----------------------------------------
"$PY" - "$D" <<'PYEOF'
import csv, sys
d = sys.argv[1]
rows = list(csv.reader(open(d + "/digits-train.csv")))[1:]
with open(d + "/digits.svm", "w") as f:
    for r in rows:
        f.write(r[1] + " " + " ".join("%d:%s" % (i + 1, v) for i, v in enumerate(r[2:]) if v != "0") + "\n")
with open(d + "/reg.csv", "w") as f:
    f.write("id,y,z," + ",".join("p%d" % i for i in range(64)) + "\n")
    for r in rows:
        x = [float(v) for v in r[2:]]
        f.write("%s,%g,%g,%s\n" % (r[0], sum(x[:32]) / 100, sum(x[32:]) / 100, ",".join(r[2:])))
with open(d + "/multi.csv", "w") as f:
    f.write("id,tags," + ",".join("p%d" % i for i in range(64)) + "\n")
    for r in rows:
        c = int(r[1])
        tags = [t for t, on in (("even", c % 2 == 0), ("big", c >= 5), ("round", c in (0, 6, 8, 9))) if on]
        f.write("%s,%s,%s\n" % (r[0], "|".join(tags), ",".join(r[2:])))
PYEOF
# other_kind NAME METRIC_TEST JOB_LINES...: trains a small job and checks its final metric.
other_kind() {
    local name=$1 test=$2; shift 2
    { printf '%s\n' "$@"; printf '[train]\nepochs = 15\nbatch_rows = 32\nlearning_rate = 0.003\n[output]\nmodel = %s/model.onnx\n' "$name"; } >"$TMP/$name.ini"
    if run_np 2 train "$TMP/$name.ini"; then
        local m
        m=$(json "$TMP/$name/model.report.json" "j['epochs'][-1]['val_metric']")
        if "$PY" -c "import sys; m=$m; sys.exit(0 if $test else 1)" && \
           "$PY" -c "import onnx,sys; onnx.checker.check_model(onnx.load(sys.argv[1]))" "$TMP/$name/model.onnx"; then
            ok "$name: trains and exports (val metric $m)"
        else
            not_ok "$name" "val metric $m"
        fi
    else
        not_ok "$name" "$(tail -3 "$TMP/err")"
    fi
}
other_kind libsvm "m >= 0.9" "[data]" "paths = data/digits.svm" "format = libsvm" "[model]" "layers = dense 64 relu"
other_kind regression "m < 0.02" "[data]" "paths = data/reg.csv" "id_column = id" "label_column = y, z" "label_kind = value" \
    "[model]" "layers = dense 64 relu"
other_kind multilabel "m >= 0.9" "[data]" "paths = data/multi.csv" "id_column = id" "label_column = tags" \
    "label_kind = multilabel" "[model]" "layers = dense 64 relu"
[ "$(paste -sd, "$TMP/multilabel/model.labels" 2>/dev/null)" = "big,even,round" ] && ok "multilabel: class names gathered" \
    || not_ok "multilabel labels" "$(cat "$TMP/multilabel/model.labels" 2>/dev/null)"

# ---- bad jobs and bad rows fail early, naming the file and line -----------------------------------
# fails NAME STATUS PATTERN ARGS...: precast train exits with STATUS and stderr matches PATTERN.
fails() {
    local name=$1 want=$2 pattern=$3; shift 3
    run_np 1 train "$@"
    local rc=$?
    if [ "$rc" = "$want" ] && grep -q -- "$pattern" "$TMP/err"; then ok "$name"
    else not_ok "$name" "exit $rc, want $want; $(grep -v '^-\|^ \|^$' "$TMP/err" | head -2)"; fi
}
fails "missing label column" 78 "digits-train.csv:1: no column 'digit'" "$JOB" --set data.label_column=digit
fails "unknown key" 78 "train.epoch: unknown key 'epoch' in section \[train\]" "$JOB" --set train.epoch=3
printf 'id,label,p0\na,1,0.5\nb,2,zero\n' >"$D/badnum.csv"
fails "bad number names file:line" 65 "badnum.csv:3: column 'p0': not a number" "$JOB" --set data.paths=data/badnum.csv --set data.test=
printf '0\n1\n' >"$D/two.labels"
fails "unknown class names file:line" 65 "digits-train.csv:[0-9]*: label '[2-9]' is not one of the 2 classes" "$JOB" --set data.labels=data/two.labels --set data.test=
fails "max_memory_mb = 0 rejected" 78 "data.max_memory_mb = '0': expected an integer in 1" "$JOB" --set data.max_memory_mb=0
"$PY" -c "
with open('$D/big.csv', 'w') as f:
    f.write('id,label,' + ','.join('p%d' % i for i in range(64)) + '\n')
    for i in range(8000): f.write('r%d,%d,' % (i, i % 10) + ','.join(['1.5'] * 64) + '\n')
"
fails "rows over the memory limit" 78 "need more than data.max_memory_mb = 1 MiB.*keeps each rank's rows in memory" "$JOB" \
    --set data.max_memory_mb=1 --set data.paths=data/big.csv --set data.test=
"$PRECAST" train --help >"$TMP/help" && grep -q "usage: precast train" "$TMP/help" && ok "train --help" || not_ok "train --help" "no usage"
exit 0
