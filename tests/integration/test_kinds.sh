#!/bin/bash
# Every model kind a team exports from PyTorch (tests/fixtures/make_kinds.py): the job runs
# under mpirun and every lookup agrees with PyTorch's own outputs through the kind's head.
. "$(dirname "$0")/lib.sh"
cd "$TMP"
KINDS="$FIX/kinds"
KPY="$PY $ROOT/tests/integration/kinds.py"
for kind in multiclass items one_vs_all multilabel binary embed embed_hashed user_vectors topk_graph argmax_graph sparse; do
    $KPY job "$KINDS" $kind $kind.ini
    if ! run_np 2 run $kind.ini; then
        not_ok "$kind: run" "$(head -c 400 "$TMP/err")"
        continue
    fi
    ids=$($PY -c "import json,sys; [print(json.loads(l)['id']) for l in open(sys.argv[1])]" "$KINDS/$kind/expected.jsonl")
    echo "$ids" | "$PRECAST" get table-$kind - >$kind.jsonl 2>get.err
    out=$($KPY check "$KINDS" $kind $kind.jsonl 2>&1) && ok "$kind: $out" || not_ok "$kind" "$out"
done

# The same multi-input table at every rank count.
$KPY job "$KINDS" embed embed.ini
for np in 1 3; do
    run_np $np run embed.ini --set output.table=embed$np && "$DUMP" embed$np >embed$np.txt || not_ok "embed -np $np" "$(cat "$TMP/err")"
done
run_np 2 run embed.ini --set output.table=embed2 && "$DUMP" embed2 >embed2.txt
cmp -s embed1.txt embed2.txt && cmp -s embed1.txt embed3.txt && ok "embed: -np 1, 2, 3 give the same table" || not_ok "embed ranks" "tables differ"

# Out-of-vocabulary ids: rejected by default, mapped to a bucket when asked, and counted.
$PY - "$KINDS/embed/input.csv" oov.csv <<'PYEOF'
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
rows[5][rows[0].index("c0")] = "77"   # file line 6
csv.writer(open(sys.argv[2], "w", newline=""), lineterminator="\n").writerows(rows)
PYEOF
run_np 2 run embed.ini --set input.paths=$TMP/oov.csv --set output.table=oov; rc=$?
[ $rc = 65 ] && grep -q "oov.csv:6: input 'cats': id 77 is outside the vocabulary \[0, 50)" "$TMP/err" \
    && ok "an out-of-vocabulary id is a bad row naming file, line and input" || not_ok "oov reject" "exit $rc: $(head -c 300 "$TMP/err")"
run_np 2 run embed.ini --set input.paths=$TMP/oov.csv --set output.table=oov --set input.oov=0 \
    && grep -q "1 out-of-vocabulary id" "$TMP/out" && ok "input.oov = 0 maps it to bucket 0 and counts it" \
    || not_ok "oov bucket" "$(cat "$TMP/out" "$TMP/err" | head -c 300)"

# A bag with more ids than the input takes is a bad row.
$PY - "$KINDS/embed/input.csv" bag.csv <<'PYEOF'
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
rows[3][rows[0].index("items")] = "1|2|3|4|5|6"   # file line 4
csv.writer(open(sys.argv[2], "w", newline=""), lineterminator="\n").writerows(rows)
PYEOF
run_np 1 run embed.ini --set input.paths=$TMP/bag.csv --set output.table=bag; rc=$?
[ $rc = 65 ] && grep -q "bag.csv:4: input 'bag': more than 5 ids" "$TMP/err" && ok "an over-long bag is a bad row" \
    || not_ok "bag too long" "exit $rc: $(head -c 300 "$TMP/err")"

# Bindings are checked against the model before any row is read.
run_np 1 run embed.ini --set input.map.cats=c0,c1 --set output.table=x; rc=$?
[ $rc = 78 ] && grep -q "map.cats names 2 columns, but the model's input 'cats' takes 4" "$TMP/err" \
    && ok "a binding of the wrong width is refused (78)" || not_ok "binding width" "exit $rc: $(head -c 300 "$TMP/err")"
run_np 1 run embed.ini --set input.map.nope=d0 --set output.table=x; rc=$?
[ $rc = 78 ] && grep -q "map.nope: the model has no input 'nope'" "$TMP/err" && ok "a binding to no input is refused" \
    || not_ok "unknown binding" "exit $rc: $(head -c 300 "$TMP/err")"

# nn.EmbeddingBag exports as a Loop: refused at load with advice.
"$PRECAST" inspect "$KINDS/embedding_bag/model.onnx" >/dev/null 2>err.txt; rc=$?
[ $rc = 78 ] && grep -q "Loop" err.txt && grep -q "nn.Embedding" err.txt && ok "EmbeddingBag's Loop is refused with advice" \
    || not_ok "EmbeddingBag" "exit $rc: $(cat err.txt)"
