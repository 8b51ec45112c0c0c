#!/bin/bash
# Versions: a job published 4 times keeps CURRENT and 2 others (output.keep_versions = 2, or
# `precast versions --keep 2` where the run does not apply it); `precast versions` lists them
# newest first; --rollback makes an older version answer lookups; `precast verify` passes on a
# whole version and exits 74 naming the shard when a byte of a shard's table file is flipped;
# a rollback to a missing or half version is refused and leaves CURRENT unchanged.
. "$(dirname "$0")/lib.sh"
cd "$TMP"
cp "$FIX/small_softmax.onnx" .
for i in 1 2 3 4; do make_csv "in$i.csv" 400 4 "$i"; done
write_job job.ini small_softmax.onnx in1.csv table

# Does this precast's run apply output.keep_versions itself?
keep_set=(--set output.keep_versions=2)
run_np 2 run job.ini "${keep_set[@]}" --set input.paths=in1.csv
rc=$?
if [ $rc != 0 ]; then
    keep_set=()
    run_np 2 run job.ini --set input.paths=in1.csv || { not_ok "run 1" "$(cat "$TMP/err")"; exit 1; }
fi
declare -a ver val
ver[1]=$(cat table/CURRENT)
val[1]=$("$PRECAST" get table id42)
for i in 2 3 4; do
    if ! run_np 2 run job.ini "${keep_set[@]}" --set input.paths=in$i.csv; then
        not_ok "run $i" "$(head -c 400 "$TMP/err")"
        exit 1
    fi
    ver[$i]=$(cat table/CURRENT)
    val[$i]=$("$PRECAST" get table id42)
done
[ "${val[1]}" != "${val[2]}" ] && [ "${val[2]}" != "${val[4]}" ] \
    && ok "4 runs on different inputs publish 4 versions with different values" \
    || not_ok "4 runs" "values do not differ: ${val[*]}"

if [ ${#keep_set[@]} = 0 ]; then
    "$PRECAST" versions table --keep 2 >keep.txt 2>&1; rc=$?
    [ $rc = 0 ] && grep -q "removed 1: ${ver[1]}" keep.txt \
        && ok "versions --keep 2 removes the oldest (run does not apply keep_versions yet)" \
        || not_ok "versions --keep 2" "exit $rc: $(cat keep.txt)"
fi
left=$(ls -d table/v* | wc -l)
[ "$left" = 3 ] && [ ! -e "table/${ver[1]}" ] && [ -d "table/${ver[2]}" ] \
    && ok "keep_versions = 2: CURRENT and the 2 newest others remain" \
    || not_ok "retention" "$(ls -a table)"
ls -d table/.trash-* table/.staging-* >/dev/null 2>&1 \
    && not_ok "no trash or staging left" "$(ls -a table)" || ok "no trash or staging left"

# Listing
"$PRECAST" versions table >list.txt 2>&1; rc=$?
if [ $rc = 0 ] && [ "$(grep -c '^[* ] v' list.txt)" = 3 ] \
    && [ "$(sed -n 2p list.txt | awk '{print $1, $2}')" = "* ${ver[4]}" ] \
    && [ "$(sed -n 3p list.txt | awk '{print $1}')" = "${ver[3]}" ] \
    && [ "$(sed -n 4p list.txt | awk '{print $1}')" = "${ver[2]}" ] \
    && sed -n 2p list.txt | grep -Eq ' 400 +0 '; then
    ok "versions lists 3, newest first, CURRENT marked, rows and rejected"
else
    not_ok "versions" "exit $rc: $(cat list.txt)"
fi
"$PRECAST" versions table --json >list.json 2>err.txt; rc=$?
"$PY" - list.json "${ver[4]}" "${ver[3]}" "${ver[2]}" <<'PYEOF' >py.txt 2>&1
import json, sys
d = json.load(open(sys.argv[1]))
names = [v["name"] for v in d["versions"]]
assert names == sys.argv[2:5], names
assert d["current"] == sys.argv[2]
v = d["versions"][0]
assert v["current"] and v["ok"] and v["rows_written"] == 400 and v["rows_rejected"] == 0
assert v["shards"] == 2 and v["ranks"] == 2 and v["input_bytes"] > 0, v
assert not d["versions"][1]["current"]
PYEOF
pyrc=$?
[ $rc = 0 ] && [ $pyrc = 0 ] && ok "versions --json" || not_ok "versions --json" "exit $rc $(cat err.txt py.txt)"

# verify
"$PRECAST" verify table >v.txt 2>&1; rc=$?
[ $rc = 0 ] && grep -q "${ver[4]} ok: 400 rows in 2 shards" v.txt && ok "verify CURRENT" \
    || not_ok "verify" "exit $rc: $(cat v.txt)"
"$PRECAST" verify table "${ver[2]}" >v.txt 2>&1; rc=$?
[ $rc = 0 ] && ok "verify a named version" || not_ok "verify named" "exit $rc: $(cat v.txt)"

# Rollback
"$PRECAST" versions table --rollback "${ver[2]}" >rb.txt 2>&1; rc=$?
if [ $rc = 0 ] && [ "$(cat table/CURRENT)" = "${ver[2]}" ] \
    && [ "$("$PRECAST" get table id42)" = "${val[2]}" ] && grep -q "was ${ver[4]}" rb.txt; then
    ok "--rollback: get answers with the older version's values"
else
    not_ok "--rollback" "exit $rc: $(cat rb.txt); CURRENT $(cat table/CURRENT)"
fi
"$PRECAST" versions table | grep -q "^\* ${ver[2]}" && ok "versions marks the rolled-back CURRENT" \
    || not_ok "versions after rollback" "$("$PRECAST" versions table 2>&1)"

# Refused rollbacks leave CURRENT unchanged
refuse() {
    local name=$1 status=$2 pattern=$3 v=$4
    "$PRECAST" versions table --rollback "$v" >rb.txt 2>&1
    local rc=$?
    if [ $rc != "$status" ]; then
        not_ok "$name" "exit $rc, want $status: $(cat rb.txt)"
    elif ! grep -Eq "$pattern" rb.txt; then
        not_ok "$name" "message does not match /$pattern/: $(cat rb.txt)"
    elif [ "$(cat table/CURRENT)" != "${ver[2]}" ]; then
        not_ok "$name" "CURRENT changed"
    else
        ok "$name (exit $status: $(head -1 rb.txt | cut -c1-140))"
    fi
}
refuse "rollback to a missing version" 66 "CURRENT unchanged.*no such version" v20990101T000000Z-job
refuse "rollback to a removed version" 66 "no such version" "${ver[1]}"
mv "table/${ver[3]}/MANIFEST.json" manifest.saved
refuse "rollback to a half version (no manifest)" 74 "MANIFEST.json" "${ver[3]}"
mv manifest.saved "table/${ver[3]}/MANIFEST.json"
mv "table/${ver[3]}/shard-00001" shard.saved
refuse "rollback to a half version (a shard missing)" 74 "shard-00001" "${ver[3]}"
mv shard.saved "table/${ver[3]}/shard-00001"
refuse "rollback to a name that is not a version" 66 "not a version name" ../table
"$PRECAST" versions table --rollback >/dev/null 2>&1; [ $? = 64 ] && ok "--rollback without V exits 64" \
    || not_ok "usage" "--rollback without V"
"$PRECAST" versions table --keep -1 >/dev/null 2>&1; [ $? = 64 ] && ok "--keep -1 exits 64" \
    || not_ok "usage" "--keep -1"
"$PRECAST" versions nosuchtable >/dev/null 2>&1; [ $? = 66 ] && ok "versions on a missing table exits 66" \
    || not_ok "versions missing table" "wrong status"
"$PRECAST" verify nosuchtable >/dev/null 2>&1; [ $? = 66 ] && ok "verify on a missing table exits 66" \
    || not_ok "verify missing table" "wrong status"
"$PRECAST" verify table v20990101T000000Z-job >/dev/null 2>&1; [ $? = 66 ] \
    && ok "verify of a missing version exits 66" || not_ok "verify missing version" "wrong status"
"$PRECAST" versions --help | grep -q "usage: precast versions" && ok "versions --help" || not_ok "versions --help" "no usage"
"$PRECAST" verify --help | grep -q "usage: precast verify" && ok "verify --help" || not_ok "verify --help" "no usage"

# A flipped byte in a shard's table file
ldb=$(ls "table/${ver[2]}/shard-00001/"*.ldb | head -1)
"$PY" - "$ldb" <<'PYEOF'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[len(b) // 3] ^= 0x40
open(p, "wb").write(bytes(b))
PYEOF
"$PRECAST" verify table >v.txt 2>&1; rc=$?
[ $rc = 74 ] && grep -q "shard-00001" v.txt && ok "verify after a flipped byte exits 74 naming the shard ($(cut -c1-160 v.txt))" \
    || not_ok "verify corruption" "exit $rc: $(cat v.txt)"
"$PRECAST" verify table "${ver[4]}" >v.txt 2>&1; rc=$?
[ $rc = 0 ] && ok "the other versions still verify" || not_ok "verify other" "exit $rc: $(cat v.txt)"

# After a rollback the version CURRENT replaces is kept first by retention: it was current a
# moment ago, although it is not the newest by name.
rm -rf rt
write_job rj.ini small_softmax.onnx in1.csv rt
for i in 1 2; do "$PRECAST" run rj.ini --set input.paths=in$i.csv >/dev/null 2>&1; done
r1=$(ls rt | grep '^v' | sort | head -1); r2=$(cat rt/CURRENT)
"$PRECAST" versions rt --rollback "$r1" >/dev/null 2>&1
sleep 1
"$PRECAST" run rj.ini --set input.paths=in3.csv --set output.keep_versions=1 >/dev/null 2>&1
r3=$(cat rt/CURRENT)
left=$(ls rt | grep '^v' | sort | tr '\n' ' ')
[ "$left" = "$r1 $r3 " ] && [ "$r3" != "$r1" ] && [ "$r3" != "$r2" ] \
    && ok "keep_versions = 1 after a rollback keeps the replaced version ($r1), not the newest other ($r2)" \
    || not_ok "retention after rollback" "left: $left (r1 $r1, r2 $r2, r3 $r3)"
