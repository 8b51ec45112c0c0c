#!/bin/bash
# Input drift (issue 10, docs/DRIFT.md), on scripts/make_drift_data.py's synthetic data: a
# feature shifted by 2 std (x_shift), one rescaled x1000 (x_scale), an id column with 40%
# unseen ids (user), and controls (x_ctrl, x_ctrl2, city) drawn as in training.
#   - `precast stats` writes the same bytes under mpirun -np 1..4;
#   - a warn run over the training rows themselves compares as exactly zero drift;
#   - a warn run over fresh undrifted rows flags nothing; over the drifted rows it flags
#     x_shift, x_scale and user and not the controls, publishes, and says so in the summary
#     line, the report and the Prometheus textfile;
#   - the drift figures of the drifted run are identical under -np 1..4;
#   - drift = gate blocks (exit 65, CURRENT unchanged, the features named), `precast versions`
#     lists the staged version and --publish-staged publishes it;
#   - a missing stats file: 78 naming it with gate or an explicit drift_stats, a warning with
#     warn and the implicit default; a damaged stats file is 78 naming it;
#   - output drift compares with the previous version's output statistics;
#   - drift = off (the default) writes no drift section and no output statistics.
. "$(dirname "$0")/lib.sh"
cd "$TMP"
"$PY" "$ROOT/scripts/make_drift_data.py" . 5000 >/dev/null || { not_ok "make_drift_data" "failed"; exit 1; }

# stats under -np 1..4: identical bytes
for np in 1 2 3 4; do
    if ! run_np "$np" stats train.csv --job job.ini -o "stats-$np.json" --set run.split_mb=1; then
        not_ok "precast stats -np $np" "$(head -c 400 "$TMP/err")"
        exit 1
    fi
done
same=1
for np in 2 3 4; do cmp -s stats-1.json "stats-$np.json" || same=0; done
[ $same = 1 ] && grep -q '"name": "x_scale"' stats-1.json \
    && ok "precast stats: the same bytes under mpirun -np 1, 2, 3, 4" \
    || not_ok "precast stats -np 1..4" "files differ: $(cmp stats-1.json stats-2.json; cmp stats-1.json stats-4.json)"
cp stats-1.json model.stats.json
"$PRECAST" stats train.csv >/dev/null 2>err.txt
rc=$?
run_np 1 stats missing.csv --job job.ini -o x.json
rc2=$?
[ $rc = 64 ] && [ $rc2 = 66 ] && grep -q "missing.csv" "$TMP/err" && [ ! -e x.json ] \
    && ok "precast stats: 64 without --job, 66 naming a missing DATA file" \
    || not_ok "precast stats errors" "exit $rc / $rc2: $(cat err.txt "$TMP/err" | head -c 300)"

# report_field FILE EXPR: a Python expression over the report r
report_field() {
    "$PY" - "$@" <<'PYEOF'
import json, sys
r = json.load(open(sys.argv[1]))
print(eval(sys.argv[2]))
PYEOF
}
LEVELS='" ".join("%s=%s" % (f["name"], f["level"]) for f in r["drift"]["features"])'

# the training rows themselves: zero drift, exactly
run_np 2 run job.ini --set input.drift=warn --set input.paths=train.csv
rc=$?
z=$(report_field table/report-drift.json 'all((f.get("psi", 0) == 0 and f.get("out_of_range_share", 0) == 0 and f.get("unseen_share", 0) == 0) for f in r["drift"]["features"])')
[ $rc = 0 ] && [ "$z" = True ] && grep -q "input drift: none" "$TMP/out" \
    && ok "the training rows compare as zero drift (PSI 0, nothing out of range, no unseen id)" \
    || not_ok "zero drift on the training rows" "exit $rc, $z: $(report_field table/report-drift.json "$LEVELS" 2>&1) $(head -c 300 "$TMP/err")"

# fresh rows of the training distribution: nothing flagged
run_np 2 run job.ini --set input.drift=warn --set input.paths=same.csv
rc=$?
lv=$(report_field table/report-drift.json "$LEVELS")
[ $rc = 0 ] && [ "$lv" = "x_shift=ok x_scale=ok x_ctrl=ok x_ctrl2=ok user=ok city=ok" ] && ! grep -q "warning: input drift" "$TMP/err" \
    && ok "undrifted rows: no feature flagged" \
    || not_ok "undrifted rows" "exit $rc, levels: $lv"

# the drifted rows under warn: flagged, published, named in the summary, report and textfile
before=$(cat table/CURRENT)
run_np 2 run job.ini --set input.drift=warn --set input.paths=drifted.csv --set run.metrics_textfile=drift.prom
rc=$?
lv=$(report_field table/report-drift.json "$LEVELS")
[ $rc = 0 ] && [ "$lv" = "x_shift=gate x_scale=gate x_ctrl=ok x_ctrl2=ok user=gate city=ok" ] \
    && ok "drifted rows: x_shift, x_scale and user flagged, the controls not" \
    || not_ok "drifted rows flagged" "exit $rc, levels: $lv"
[ "$(cat table/CURRENT)" != "$before" ] && grep -qE "input drift: x_scale \(PSI [0-9.]+\), x_shift \(PSI [0-9.]+\), user \([0-9.]+% unseen ids\)" "$TMP/out" \
    && grep -q "warning: input drift against" "$TMP/err" \
    && ok "drift = warn publishes; the summary line names the top drifted features" \
    || not_ok "warn summary" "$(cat "$TMP/out" "$TMP/err" | head -c 600)"
grep -qE '^precast_feature_psi\{job="drift",feature="x_scale"\} [0-9.]+$' drift.prom \
    && grep -qE '^precast_feature_psi\{job="drift",feature="x_ctrl"\} 0\.0' drift.prom \
    && grep -qE '^precast_feature_unseen_ids_share\{job="drift",feature="user"\} 0\.[34]' drift.prom \
    && ok "precast_feature_psi{feature=...} in the Prometheus textfile" \
    || not_ok "textfile" "$(grep feature drift.prom | head -5)"
out=$(report_field table/report-drift.json 'r["drift"]["output"]["previous_version"]')
[ "$out" = "$before" ] && [ -f "table/$(cat table/CURRENT)/output.stats.json" ] \
    && ok "output drift: compared with the previous version's output statistics" \
    || not_ok "output drift" "previous $out, want $before"

# the drift figures are identical whatever the number of ranks
ref=""
agree=1
for np in 1 2 3 4; do
    run_np "$np" run job.ini --set input.drift=warn --set input.paths=drifted.csv --set run.split_mb=1 \
        || { agree=0; break; }
    got=$("$PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); print(json.dumps([r["drift"]["features"], r["drift"]["rows"]], sort_keys=True))' table/report-drift.json)
    [ -z "$ref" ] && ref=$got
    [ "$got" = "$ref" ] || agree=0
done
[ $agree = 1 ] && ok "the drift figures are identical under -np 1, 2, 3, 4" \
    || not_ok "drift under -np 1..4" "differ: $ref / $got"

# gate: staged, 65, CURRENT unchanged, features named; then --publish-staged
before=$(cat table/CURRENT)
run_np 2 run job.ini --set input.drift=gate --set input.paths=drifted.csv
rc=$?
[ $rc = 65 ] && [ "$(cat table/CURRENT)" = "$before" ] && grep -q "x_scale (PSI" "$TMP/err" \
    && grep -q "x_shift (PSI" "$TMP/err" && grep -q "user (" "$TMP/err" && ! grep -q "x_ctrl" "$TMP/err" \
    && ok "drift = gate: exit 65, CURRENT unchanged, the drifted features named on stderr" \
    || not_ok "gate" "exit $rc, CURRENT $(cat table/CURRENT) (was $before): $(grep -v '^---\|^ \|^$' "$TMP/err" | head -c 600)"
"$PRECAST" versions table >list.txt 2>&1
staged=$(sed -n 's/^staged: \([^ ]*\).*/\1/p' list.txt)
if [ -n "$staged" ] && "$PRECAST" versions table --publish-staged "$staged" >pub.txt 2>&1 \
    && [ "$(cat table/CURRENT)" = "$staged" ] && "$PRECAST" verify table >/dev/null 2>&1; then
    ok "versions lists the staged version; --publish-staged publishes it (verify passes)"
else
    not_ok "--publish-staged" "staged '$staged': $(cat list.txt pub.txt | head -c 600)"
fi
"$PRECAST" versions table --publish-staged v20000101T000000Z-none >/dev/null 2>pub.err
rc=$?
[ $rc = 66 ] && grep -q "no staged version" pub.err && ok "--publish-staged of an unknown version: 66" \
    || not_ok "--publish-staged unknown" "exit $rc: $(cat pub.err)"
run_np 2 run job.ini --set input.drift=gate --set input.paths=same.csv
[ $? = 0 ] && ok "drift = gate publishes undrifted rows" || not_ok "gate on undrifted rows" "$(head -c 300 "$TMP/err")"

# missing and damaged stats files
run_np 1 run job.ini --set input.drift=gate --set input.drift_stats=nope.json
rc=$?
[ $rc = 78 ] && grep -q "nope.json" "$TMP/err" && ok "drift = gate without its stats file: 78 naming it" \
    || not_ok "gate, missing stats" "exit $rc: $(head -c 300 "$TMP/err")"
run_np 1 run job.ini --set input.drift=warn --set input.drift_stats=nope.json
rc=$?
[ $rc = 78 ] && grep -q "nope.json" "$TMP/err" && ok "drift = warn with a missing explicit drift_stats: 78" \
    || not_ok "warn, explicit missing stats" "exit $rc: $(head -c 300 "$TMP/err")"
mv model.stats.json keep.json
run_np 1 run job.ini --set input.drift=warn
rc=$?
[ $rc = 0 ] && grep -q "warning: input.drift = warn: no training statistics" "$TMP/err" && grep -q "model.stats.json" "$TMP/err" \
    && grep -q "input drift: not checked (no statistics)" "$TMP/out" \
    && [ "$(report_field table/report-drift.json 'r["drift"]["checked"]')" = False ] \
    && ok "drift = warn with the default stats file missing: a warning naming it, published" \
    || not_ok "warn, default missing" "exit $rc: $(head -c 300 "$TMP/err")"
sed 's/"version": 1/"version": 9/' keep.json >model.stats.json
run_np 1 run job.ini --set input.drift=warn
rc=$?
[ $rc = 78 ] && grep -q "model.stats.json: version 9" "$TMP/err" && ok "a stats file of an unknown version: 78 naming it" \
    || not_ok "bad stats file" "exit $rc: $(head -c 300 "$TMP/err")"
mv keep.json model.stats.json

# statistics that lack a column (precast train does not profile hashed id columns): the
# others are checked, the missing one is named in a warning
"$PY" - <<'PYEOF'
import json
s = json.load(open("model.stats.json"))
s["ids"] = [c for c in s["ids"] if c["name"] != "city"]
json.dump(s, open("nocity.stats.json", "w"))
PYEOF
run_np 2 run job.ini --set input.drift=warn --set input.paths=drifted.csv --set input.drift_stats=nocity.stats.json
rc=$?
lv=$(report_field table/report-drift.json "$LEVELS")
[ $rc = 0 ] && [ "$lv" = "x_shift=gate x_scale=gate x_ctrl=ok x_ctrl2=ok user=gate" ] \
    && grep -q "warning: input drift: nocity.stats.json has no statistics of city: not checked" "$TMP/err" \
    && ok "a column the statistics lack is named in a warning and not checked; the others are" \
    || not_ok "untracked column" "exit $rc, levels $lv: $(head -c 300 "$TMP/err")"

# drift = off: nothing of it
run_np 2 run job.ini --set input.paths=same.csv
rc=$?
d=$(report_field table/report-drift.json '"drift" in r')
[ $rc = 0 ] && [ "$d" = False ] && [ ! -e "table/$(cat table/CURRENT)/output.stats.json" ] && ! grep -q "input drift" "$TMP/out" \
    && ok "drift = off (the default): no drift section, no output statistics, the summary line as before" \
    || not_ok "drift off" "exit $rc, drift in report: $d"
