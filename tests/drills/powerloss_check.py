"""Power-loss checker for tests/drills/powerloss.sh (journal written by powerloss_shim.so).

  powerloss_check.py baseline TABLE STORE OUT.json
      records the table as it is now (after sync(1)): every directory's listing and a copy of
      every regular file, by inode — the durable state before the journaled command ran.
  powerloss_check.py check OUT.json JOURNAL PRECAST WORKDIR ALLOWED [REF_CHECKSUM]
      for every prefix of the journal (a power cut after each durable event, and before the
      first), rebuilds the durable table in WORKDIR/t and runs `precast verify` on it.
      ALLOWED: comma-separated version names CURRENT may name, the one before first ("none"
      when there was no CURRENT: then no CURRENT is allowed too); a version other than the one
      before must have MANIFEST checksum REF_CHECKSUM when given. Prints one JSON line: points, ok, distinct states, CURRENT
      counts, failures (first 5, with the prefix length to reproduce); exit 1 on a failure.

Model (pessimistic, POSIX's promise and no more): a directory's entries are those it had at
its last fsync (before the journal: the baseline), a file's bytes are those it had at its
last fsync (a file created and never fsynced is empty); everything else is lost."""
import hashlib
import json
import os
import shutil
import subprocess
import sys


def baseline(table, store, out):
    os.makedirs(store, exist_ok=True)
    dirs, files = {}, {}
    root = os.stat(table).st_ino
    for d, subdirs, names in os.walk(table):
        ino = os.stat(d).st_ino
        ents = {}
        for n in subdirs + names:
            p = os.path.join(d, n)
            st = os.lstat(p)
            t = "d" if os.path.isdir(p) and not os.path.islink(p) else "f" if os.path.isfile(p) and not os.path.islink(p) else "o"
            ents[n] = [st.st_ino, t]
            if t == "f":
                dst = os.path.join(store, "base-%d" % st.st_ino)
                shutil.copyfile(p, dst)
                files[str(st.st_ino)] = dst
        dirs[str(ino)] = ents
    json.dump({"root": root, "dirs": dirs, "files": files}, open(out, "w"))


def parse_journal(path):
    recs = []
    with open(path, "rb") as f:
        for line in f:
            line = line.rstrip(b"\n").decode("utf-8", "surrogateescape")
            if not line:
                continue
            kind = line[0]
            if kind == "F":
                _, pid, ino, snap, p = line.split(" ", 4)
                recs.append(("F", int(ino), snap, p))
            elif kind == "C":
                _, pid, ino, t, p = line.split(" ", 4)
                recs.append(("C", int(ino), t, p))
            elif kind == "D":
                _, pid, ino, rest = line.split(" ", 3)
                p, _, ents = rest.rpartition(" ")
                entries = {}
                for e in ents.split(","):
                    if not e:
                        continue
                    hexname, eino, t = e.split("/")
                    entries[bytes.fromhex(hexname).decode("utf-8", "surrogateescape")] = [int(eino), t]
                recs.append(("D", int(ino), entries, p))
    return recs


def materialize(base, recs, k, out):
    dirs = {int(i): e for i, e in base["dirs"].items()}
    files = {int(i): p for i, p in base["files"].items()}
    for r in recs[:k]:
        if r[0] == "F":
            files[r[1]] = r[2]
        elif r[0] == "D":
            dirs[r[1]] = r[2]
        elif r[0] == "C":  # a new inode (maybe a reused number): nothing of it is durable yet
            files.pop(r[1], None)
            if r[2] == "d":
                dirs[r[1]] = {}
            else:
                dirs.pop(r[1], None)
    if os.path.exists(out):
        shutil.rmtree(out)
    h = hashlib.sha256()

    def build(ino, path, depth):
        os.mkdir(path)
        for name, (cino, t) in sorted(dirs.get(ino, {}).items()):
            p = os.path.join(path, name)
            h.update(p[len(out):].encode("utf-8", "surrogateescape") + t.encode())
            if t == "d" and depth < 16:
                build(cino, p, depth + 1)
            elif t == "f":
                src = files.get(cino)
                if src is None:
                    open(p, "wb").close()
                else:
                    shutil.copyfile(src, p)
                    h.update(open(p, "rb").read())
    build(base["root"], out, 0)
    return h.hexdigest()


def check(base_path, journal, precast, work, allowed, ref):
    base = json.load(open(base_path))
    recs = parse_journal(journal) if os.path.exists(journal) else []
    allowed = [a for a in allowed.split(",") if a]
    res = {"points": 0, "ok": 0, "states": 0, "events": len(recs), "current": {}, "failures": []}
    seen = {}
    t = os.path.join(work, "t")
    for k in range(len(recs) + 1):
        res["points"] += 1
        digest = materialize(base, recs, k, t)
        if digest in seen:
            ok, why = seen[digest]
        else:
            res["states"] += 1
            ok, why = True, ""
            cur_path = os.path.join(t, "CURRENT")
            cur = open(cur_path).read().strip() if os.path.exists(cur_path) else None
            if cur is None:
                if allowed and allowed[0] != "none":
                    ok, why = False, "no CURRENT (there was one before)"
            else:
                r = subprocess.run([precast, "verify", t], capture_output=True, text=True)
                if r.returncode != 0:
                    ok, why = False, "CURRENT %s: verify exit %d: %s" % (cur, r.returncode, r.stderr.strip()[:300])
                elif allowed and cur not in allowed:
                    ok, why = False, "CURRENT names %s, not one of %s" % (cur, allowed)
                elif ref and allowed and cur != allowed[0]:
                    m = json.load(open(os.path.join(t, cur, "MANIFEST.json")))
                    if m["checksum"] != ref:
                        ok, why = False, "CURRENT %s checksum %s, the fault-free run's %s" % (cur, m["checksum"], ref)
            seen[digest] = (ok, why)
            if ok and cur is not None:
                res["current"][cur] = res["current"].get(cur, 0) + 1
        if ok:
            res["ok"] += 1
        elif len(res["failures"]) < 5:
            last = recs[k - 1] if k > 0 else None
            res["failures"].append({"prefix": k, "after": last[0] + " " + last[3] if last else "start", "why": why})
    print(json.dumps(res))
    return 1 if res["ok"] != res["points"] else 0


if __name__ == "__main__":
    if sys.argv[1] == "baseline":
        baseline(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(check(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6],
                       sys.argv[7] if len(sys.argv) > 7 else ""))
