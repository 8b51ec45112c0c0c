#!/bin/bash
# Bad input: each case gets its own exit status (DESIGN.md) and a message naming the file and
# line, or the node; the previously published version stays current and readable; no staging
# directory is left behind.
. "$(dirname "$0")/lib.sh"
cd "$TMP"
cp "$FIX/small_softmax.onnx" "$FIX/unsupported_op.onnx" .
make_csv good.csv 500 4 3
write_job job.ini small_softmax.onnx good.csv table
if ! run_np 2 run job.ini; then
    not_ok "baseline run" "$(cat "$TMP/err")"
    exit 1
fi
before_current=$(cat table/CURRENT)
before_value=$("$PRECAST" get table id42)

# expect NAME STATUS PATTERN JOB_ARGS...: the run fails with STATUS, stderr matches PATTERN
# (grep -E), and the table is as it was.
expect() {
    local name=$1 status=$2 pattern=$3; shift 3
    run_np 2 "$@"
    local rc=$?
    if [ "$rc" != "$status" ]; then
        not_ok "$name" "exit $rc, want $status; stderr: $(head -c 400 "$TMP/err")"
    elif ! grep -Eq "$pattern" "$TMP/err"; then
        not_ok "$name" "stderr does not match /$pattern/: $(head -c 400 "$TMP/err")"
    elif [ "$(cat table/CURRENT)" != "$before_current" ]; then
        not_ok "$name" "CURRENT changed"
    elif [ "$("$PRECAST" get table id42)" != "$before_value" ]; then
        not_ok "$name" "previous version no longer answers the same"
    elif ls -d table/.staging-* >/dev/null 2>&1; then
        not_ok "$name" "staging directory left behind"
    else
        ok "$name (exit $status: $(head -1 "$TMP/err" | cut -c1-150))"
    fi
}

# bad_csv NAME LINE_CONTENT: good.csv with line 101 replaced.
bad_csv() {
    { head -100 good.csv; printf '%s\n' "$2"; tail -n +102 good.csv; } >"$1"
}

bad_csv few.csv "idX,1.0,2.0,3.0"
expect "too few columns" 65 "few\.csv:101: 4 fields, the header has 5" run job.ini --set input.paths=few.csv
bad_csv many.csv "idX,1.0,2.0,3.0,4.0,5.0"
expect "too many columns" 65 "many\.csv:101: 6 fields" run job.ini --set input.paths=many.csv
bad_csv nan.csv "idX,1.0,abc,3.0,4.0"
expect "non-numeric feature" 65 "nan\.csv:101: column 3: .*abc" run job.ini --set input.paths=nan.csv
{ head -300 good.csv; printf 'idQ,"1.0,2.0,3.0,4.0\n'; tail -n +302 good.csv; } >quote.csv
expect "unterminated quote" 65 "quote\.csv:301: .*unterminated" run job.ini --set input.paths=quote.csv
bad_csv dup.csv "$(sed -n 10p good.csv)"
expect "duplicate id names both places" 65 "duplicate id .*dup\.csv:10 and .*dup\.csv:101|duplicate id .*dup\.csv:101 and .*dup\.csv:10" \
    run job.ini --set input.paths=dup.csv
expect "missing model" 66 "nosuch\.onnx" run job.ini --set model.path=nosuch.onnx
head -c 300 small_softmax.onnx >truncated.onnx
expect "truncated model" 78 "truncated\.onnx" run job.ini --set model.path=truncated.onnx
expect "unsupported op names node and op" 78 "unsupported_op\.onnx.*node .*Conv" run job.ini --set model.path=unsupported_op.onnx
expect "missing input" 66 "nothing\*\.csv|nothing" run job.ini --set "input.paths=nothing*.csv"
expect "missing id column" 78 "no id column 'user'" run job.ini --set input.id_column=user
cut -d, -f1-4 good.csv >narrow.csv
expect "width mismatch names both numbers" 78 "3 feature columns, but the model's input '.*' takes 4" run job.ini --set input.paths=narrow.csv
{ cat job.ini; echo "top-k = 3"; } >typo.ini
expect "unknown key names file and line" 78 "typo\.ini:[0-9]+: unknown key 'top-k'" run typo.ini
expect "bad --set" 64 "expected section.key=value" run job.ini --set nonsense
expect "missing job file" 66 "nojob\.ini" run nojob.ini

# Usage errors and help
"$PRECAST" run --help >help.txt 2>&1 && grep -q "usage: precast run" help.txt && ok "run --help" || not_ok "run --help" "$(cat help.txt)"
"$PRECAST" get --help >help.txt 2>&1 && grep -q "usage: precast get" help.txt && ok "get --help" || not_ok "get --help" "$(cat help.txt)"
"$PRECAST" inspect --help >help.txt 2>&1 && grep -q "usage: precast inspect" help.txt && ok "inspect --help" || not_ok "inspect --help" "$(cat help.txt)"
"$PRECAST" frobnicate >/dev/null 2>&1; [ $? = 64 ] && ok "unknown command exits 64" || not_ok "unknown command" "wrong status"
"$PRECAST" get nosuchtable k >/dev/null 2>err.txt; rc=$?
[ $rc = 66 ] && ok "get on a missing table exits 66" || not_ok "get missing table" "exit $rc $(cat err.txt)"
"$PRECAST" inspect small_softmax.onnx >inspect.txt 2>&1 && grep -qi "gemm" inspect.txt && grep -qi "param" inspect.txt \
    && ok "inspect lists ops and parameters" || not_ok "inspect" "$(cat inspect.txt)"
"$PRECAST" inspect unsupported_op.onnx >/dev/null 2>err.txt; rc=$?
[ $rc = 78 ] && grep -q "Conv" err.txt && ok "inspect refuses an unsupported op (78)" || not_ok "inspect unsupported" "exit $rc $(cat err.txt)"
"$PRECAST" inspect small_softmax.onnx --batch 64 >inspect.txt 2>&1 && grep -q "batches of 64 rows" inspect.txt \
    && grep -Eq "dense .*\[(OpenBLAS|oneDNN|row by row)\]" inspect.txt \
    && ok "inspect --batch 64 plans for 64 rows and names each dense layer's library" || not_ok "inspect --batch" "$(cat inspect.txt)"
"$PRECAST" inspect small_softmax.onnx --batch 0 >/dev/null 2>err.txt; rc=$?
[ $rc = 64 ] && grep -q -- "--batch" err.txt && ok "inspect --batch 0 exits 64 naming the option" || not_ok "inspect --batch 0" "exit $rc $(cat err.txt)"

# output.duplicates = first | last: the row that comes first / last in input order wins,
# whatever order the shuffle delivered them in; the others are counted as dropped.
dup_id=$(sed -n 10p good.csv | cut -d, -f1)
other_id=$(sed -n 101p good.csv | cut -d, -f1)
{ head -100 good.csv; sed -n 101p good.csv | sed "s/^$other_id,/$dup_id,/"; tail -n +102 good.csv; } >dup2.csv
want_first=$("$PRECAST" get table "$dup_id" | sed 's/.*"value": //')
want_last=$("$PRECAST" get table "$other_id" | sed 's/.*"value": //')
for policy in first last; do
    for np in 1 3; do
        if run_np $np run job.ini --set input.paths=dup2.csv --set output.duplicates=$policy --set output.table=d-$policy-$np; then
            got=$("$PRECAST" get d-$policy-$np "$dup_id" | sed 's/.*"value": //')
            want=$want_first; [ $policy = last ] && want=$want_last
            [ "$got" = "$want" ] && grep -q "499 written, 0 rejected, 1 duplicate dropped ($policy)" "$TMP/out" \
                && ok "duplicates = $policy, -np $np: the $policy row wins, one counted as dropped" \
                || not_ok "duplicates $policy -np $np" "got $got want $want; $(cat "$TMP/out")"
        else
            not_ok "duplicates $policy -np $np" "$(head -c 300 "$TMP/err")"
        fi
    done
done
