#!/bin/bash
# The bad-input corpus (issue 8): every case of tests/corpus/inputs/cases.tsv — a damaged or
# unusual input row at the first row, the last row, across the -np 2 rank cut and across a
# 1 MiB segment cut; special files first, last and across the cut; damaged models — run as a
# real job, checked against its documented outcome: exit status, the report's row counts, the
# rejects file's reasons and lines, the table (verify, keys), and on failure an untouched
# table (CURRENT as before, no .staging-*). Then `precast inspect` on the model with one bit
# flipped at every byte and cut at every 4th length and around each field boundary: 0 or 78
# naming the file, never a crash.
# One "ok - " / "not ok - " line per case; the run time on stderr. Environment: BUILD,
# CORPUS_JOBS (runs at once, default 8: a run mostly waits for Open MPI's start-up, so runs
# overlap well on 2 cores), CORPUS_ONLY (a regex of case names), CORPUS_TIMING=1 (phases).
. "$(dirname "$0")/lib.sh"
CORPUS="$ROOT/tests/corpus/inputs"
CASES="$CORPUS/cases.tsv"
JOBS=${CORPUS_JOBS:-8}
ONLY=${CORPUS_ONLY:-}
t0=$(date +%s%N)
cd "$TMP"
# The cases' inputs and tables (~200 MB, most of it the 1 MiB-line and split_mb = 1 inputs)
# go to a tmpfs when there is one with 1 GiB free: on a disk mounted with online discard,
# deleting them took 20 s of the run's time.
W="$TMP/w"
if [ "$(df -Pk /dev/shm 2>/dev/null | awk 'NR == 2 { print $4 }')" -gt 1048576 ] 2>/dev/null; then
    W=$(mktemp -d /dev/shm/precast-corpus.XXXXXX 2>/dev/null) || W="$TMP/w"
fi
mkdir -p "$W"
trap 'c0=$(date +%s%N); rm -rf "$W" "$TMP"; [ -n "${CORPUS_TIMING:-}" ] && echo "# cleanup: $((($(date +%s%N) - c0) / 1000000)) ms" >&2' EXIT
if ! "$PY" "$CORPUS/make_cases.py" "$W" "$CASES" "$FIX" >gen.log 2>&1 ||
   ! "$PY" "$CORPUS/make_cases.py" "$W" "$CASES" "$FIX" --sweep >>gen.log 2>&1; then
    not_ok "corpus generator" "$(tail -5 gen.log)"
    exit 1
fi

# The published table every failing case starts from (a copy each), so that "CURRENT
# unchanged" and "the previous version still answers" can be checked.
if ! ASAN_OPTIONS=$MPI_ASAN_OPTIONS "$PRECAST" run "$W/_baseline/job.ini" >"$W/_baseline/out" 2>&1; then
    not_ok "corpus baseline run" "$(head -c 300 "$W/_baseline/out")"
    exit 1
fi
BASE_GET=$("$PRECAST" get "$W/_baseline/table" r00000 r00199)

# run_case DIR NP SETS EXIT: runs the job of one case and keeps what the checker needs in DIR.
run_case() (
    local d=$1 np=$2 sets=$3 want=$4
    local args=(run job.ini) s
    if [ "$sets" != "-" ]; then
        IFS=';' read -ra s <<<"$sets"
        for x in "${s[@]}"; do args+=(--set "$x"); done
    fi
    cd "$d" || return
    if [ "$want" != 0 ]; then
        cp -a "$W/_baseline/table" table
        cat table/CURRENT >current.before
    fi
    if [ "$np" = 1 ]; then
        ASAN_OPTIONS=$MPI_ASAN_OPTIONS "$PRECAST" "${args[@]}" >out 2>err
    else
        TMP=$d run_np "$np" "${args[@]}"
    fi
    echo $? >rc
    if [ -e table/CURRENT ]; then
        "$PRECAST" verify table >verify.out 2>&1
        echo $? >verify.rc
        "$DUMP" table >dump.txt 2>dump.err
        echo $? >dump.rc
        "$PRECAST" get table r00000 r00199 >get.txt 2>&1
    fi
    ls -a table >ls.txt 2>/dev/null
)

# Reads the TSV: case np set exit (in file order).
cases() {
    grep -v '^#' "$CASES" | tail -n +2 | awk -F'\t' -v only="$ONLY" 'only == "" || $1 ~ only { print $1, $2, $5, $6, $7 }'
}

# Small cases, JOBS at a time (each runs in its own folder and table).
running=0
while read -r name cls np sets want; do
    [ -d "$W/$name" ] || continue # big: below
    run_case "$W/$name" "$np" "$sets" "$want" </dev/null &
    running=$((running + 1))
    if [ "$running" -ge "$JOBS" ]; then
        wait -n
        running=$((running - 1))
    fi
done < <(cases)
wait

[ -n "${CORPUS_TIMING:-}" ] && echo "# small cases done: $((($(date +%s%N) - t0) / 1000000)) ms" >&2
# Big cases (a 16 or 64 MiB line), one at a time: written, run, their inputs deleted.
while read -r name cls np sets want; do
    [ -d "$W/$name" ] && continue
    "$PY" "$CORPUS/make_cases.py" "$W" "$CASES" "$FIX" --only "$name" >>gen.log 2>&1
    run_case "$W/$name" "$np" "$sets" "$want" </dev/null
    # keep only what the checker reads (the rejects raw rows of these are null: too long)
    find "$W/$name" -maxdepth 1 -type f \( -name '*.csv' -o -name '*.svm' \) -delete
done < <(cases)

[ -n "${CORPUS_TIMING:-}" ] && echo "# big cases done: $((($(date +%s%N) - t0) / 1000000)) ms" >&2
# The model sweep: inspect on every flipped / cut file, JOBS at a time.
[ -z "$ONLY" ] && cut -f1 "$W/_sweep/sweep.tsv" | (cd "$W/_sweep" && xargs -P "$JOBS" -I{} sh -c \
    'ASAN_OPTIONS=$0 "$1" inspect "{}" >/dev/null 2>"{}.err"; echo $? >"{}.rc"' "$MPI_ASAN_OPTIONS" "$PRECAST")

[ -n "${CORPUS_TIMING:-}" ] && echo "# sweep done: $((($(date +%s%N) - t0) / 1000000)) ms" >&2
"$PY" - "$CASES" "$W" "$BASE_GET" "$ONLY" <<'PYEOF'
import json, os, re, sys

cases_path, W, base_get, only = sys.argv[1:5]
SAN = re.compile(r"AddressSanitizer|LeakSanitizer|runtime error:|Segmentation fault|core dumped|"
                 r"exited on signal|terminated by signal|Aborted")


def rows(path):
    cols = None
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if not line or line.startswith("#"):
            continue
        f = line.split("\t")
        if cols is None:
            cols = f
            continue
        yield dict(zip(cols, f))


def read(path, mode="r"):
    try:
        with open(path, mode) as f:
            return f.read()
    except OSError:
        return None


def to_bytes(s):
    """A JSON-decoded string back to bytes: json_quote wrote invalid bytes as \\u00XX."""
    return b"".join(bytes([ord(c)]) if ord(c) < 0x100 else c.encode("utf-8") for c in s)


def check(c):
    d = os.path.join(W, c["case"])
    rc = read(os.path.join(d, "rc"))
    if rc is None:
        return "did not run"
    rc = int(rc)
    err = read(os.path.join(d, "err"), "rb").decode("utf-8", "replace")
    out = read(os.path.join(d, "out"), "rb").decode("utf-8", "replace")
    first = (err.strip().splitlines() or [""])[0][:160]
    want = int(c["exit"])
    m = SAN.search(err + out)
    if m:
        return "crash or sanitizer report (%s), exit %d: %s" % (m.group(0), rc, err[-600:])
    if rc != want:
        return "exit %d, want %d; stderr: %s" % (rc, want, err.strip()[:400])
    table = os.path.join(d, "table")
    rep = read(os.path.join(table, "report-job.json"))
    try:
        rep = json.loads(rep) if rep is not None else None
    except ValueError as e:
        return "report-job.json is not JSON: %s" % e
    if rep is None:
        return "no report-job.json"
    if rep.get("exit_status") != want:
        return "report exit_status %r, want %d" % (rep.get("exit_status"), want)
    ls = (read(os.path.join(d, "ls.txt")) or "").split()
    if any(x.startswith(".staging-") for x in ls):
        return ".staging-* left behind: %s" % ls
    if want != 0:
        for pat in c["stderr"].split(" && "):
            if pat != "-" and not re.search(pat, err):
                return "stderr does not match /%s/: %s" % (pat, err.strip()[:300])
        if rep.get("version") is not None:
            return "report names version %r after a failure" % rep["version"]
        before = read(os.path.join(d, "current.before"))
        now = read(os.path.join(table, "CURRENT"))
        if now != before:
            return "CURRENT changed: %r -> %r" % (before, now)
        if read(os.path.join(d, "get.txt")) != base_get + "\n":
            return "the previous version no longer answers the same: %s" % read(os.path.join(d, "get.txt"))
        if int(read(os.path.join(d, "verify.rc")) or 1) != 0:
            return "verify of the previous version fails: %s" % read(os.path.join(d, "verify.out"))
        return "ok: " + first
    # exit 0: a published, verified table holding exactly the rows the TSV says
    cur = (read(os.path.join(table, "CURRENT")) or "").strip()
    if not cur or rep.get("version") != cur:
        return "CURRENT %r, report version %r" % (cur, rep.get("version"))
    if int(read(os.path.join(d, "verify.rc")) or 1) != 0:
        return "verify fails: %s" % read(os.path.join(d, "verify.out"))
    if int(read(os.path.join(d, "dump.rc")) or 1) != 0:
        return "tool_dump fails: %s" % read(os.path.join(d, "dump.err"))
    got = (rep.get("rows_read"), rep.get("rows_written"), rep.get("rows_rejected"))
    exp = tuple(int(c[k]) for k in ("rows_in", "written", "rejected"))
    if got != exp:
        return "rows in/written/rejected %s, want %s" % (got, exp)
    keys = [l.split("\t", 1)[0] for l in read(os.path.join(d, "dump.txt"), "rb").decode("utf-8").splitlines()]
    ids = set(read(os.path.join(d, "ids.txt"), "rb").decode("utf-8").splitlines())
    special = read(os.path.join(d, "special.txt"), "rb").decode("utf-8").splitlines()
    if len(keys) != exp[1]:
        return "%d keys in the table, want %d" % (len(keys), exp[1])
    stray = [k for k in keys if k not in ids]
    if stray:
        return "keys that are no input id: %s" % ", ".join(k[:60] for k in stray[:3])
    if "duplicate" not in c["class"]:
        for s in special:
            if (s in keys) != (exp[2] == 0):
                return "id %s %s the table" % (s[:60], "missing from" if exp[2] == 0 else "in")
    rej_path = os.path.join(table, "rejects-job.jsonl")
    rej = read(rej_path, "rb")
    if exp[2] == 0:
        if rej is not None:
            return "a rejects file with no rejected row"
        return "ok: " + out.strip().splitlines()[-1][:150] if out.strip() else "ok"
    if rej is None:
        return "no rejects file"
    recs = []
    for line in rej.decode("utf-8").splitlines():
        try:
            recs.append(json.loads(line))
        except ValueError as e:
            return "rejects line is not JSON (%s): %s" % (e, line[:200])
    reasons = sorted(r.get("reason") for r in recs)
    if reasons != sorted(c["reasons"].split(",")):
        return "reject reasons %s, want %s (%s)" % (reasons, c["reasons"], [r.get("message") for r in recs])
    lines = sorted(r.get("line") for r in recs)
    if lines != sorted(int(x) for x in c["lines"].split(",")):
        return "reject lines %s, want %s" % (lines, c["lines"])
    for r in recs:
        if not all(k in r for k in ("file", "line", "offset", "reason", "message", "row")):
            return "reject lacks a field: %s" % str(r)[:200]
        if "%s:%d" % (r["file"], r["line"]) not in r["message"]:
            return "reject message does not name file:line: %s" % r["message"][:200]
        src = read(os.path.join(d, r["file"]), "rb")
        if r["row"] is not None and src is not None:
            raw = to_bytes(r["row"])
            if src[r["offset"]:r["offset"] + len(raw)] != raw:
                return "reject row is not the file's bytes at offset %d" % r["offset"]
    return "ok: %s; %s" % (reasons[0], recs[0]["message"][:120])


nok = nbad = 0
for c in rows(cases_path):
    if only and not re.search(only, c["case"]):
        continue
    try:
        why = check(c)
    except Exception as e:  # a checker bug must show, not hide the rest
        why = "checker error: %r" % e
    tag = "%s [%s, %s, -np %s, exit %s]" % (c["case"], c["fmt"], c["set"], c["np"], c["exit"])
    if why.startswith("ok"):
        nok += 1
        print("ok - %s%s" % (tag, why[2:]))
    else:
        nbad += 1
        print("not ok - %s: %s" % (tag, why.replace("\n", " | ")))

# the sweep
if not only:
    S = os.path.join(W, "_sweep")
    for kind, prefix in (("one bit flipped at every byte", "flip-"), ("cut at every 4th length and at field boundaries", "cut-")):
        bad, n = [], 0
        for line in open(os.path.join(S, "sweep.tsv")):
            name, allowed = line.split()
            if not name.startswith(prefix):
                continue
            n += 1
            rc = read(os.path.join(S, name + ".rc"))
            err = read(os.path.join(S, name + ".err"), "rb").decode("utf-8", "replace")
            rc = int(rc) if rc else -1
            if SAN.search(err) or str(rc) not in allowed.split(",") or (rc != 0 and name not in err):
                bad.append("%s: exit %d %s" % (name, rc, err.strip()[:160]))
        if bad:
            print("not ok - inspect, model with %s (%d files): %d wrong: %s" % (kind, n, len(bad), " | ".join(bad[:5])))
        else:
            print("ok - inspect, model with %s (%d files): 0 or 78 naming the file, no crash" % (kind, n))
print("# corpus: %d ok, %d not ok" % (nok, nbad), file=sys.stderr)
PYEOF
t1=$(date +%s%N)
echo "# test_corpus.sh: $(((t1 - t0) / 1000000)) ms" >&2
