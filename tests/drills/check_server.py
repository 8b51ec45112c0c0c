"""Asks `precast serve` for every key of a table and compares with the expected values.

  check_server.py HTTP_PORT RESP_PORT EXPECTED_TSV [SAMPLE]

EXPECTED_TSV: `precast get --format tsv` output of the pristine table (key TAB value).
Every key goes over RESP (pipelined GETs, one connection), and in HTTP batchGets of 100; SAMPLE
keys (default 100) also one by one over HTTP GET. Each answer must be the expected value or an
error (RESP -ERR, HTTP 503): a different value, or "not found" for a key the table holds, is
wrong. Prints one JSON line: {"keys", "ok", "unavailable", "wrong", "examples"}; exit 0 unless
something was wrong or the server stopped answering."""
import http.client
import json
import random
import socket
import sys


def load(path):
    exp = {}
    with open(path, "rb") as f:
        for line in f:
            k, _, v = line.rstrip(b"\n").partition(b"\t")
            exp[k] = v
    return exp


class RespReader:
    def __init__(self, sock):
        self.s, self.buf = sock, b""

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(1 << 16)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        l, _, self.buf = self.buf.partition(b"\r\n")
        return l

    def exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.s.recv(1 << 16)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        d, self.buf = self.buf[:n], self.buf[n + 2:]
        return d

    def reply(self):
        l = self.line()
        if l[:1] == b"$":
            n = int(l[1:])
            return ("miss", None) if n < 0 else ("value", self.exact(n))
        if l[:1] == b"-":
            return ("error", l)
        return ("other", l)


def main():
    hport, rport, exp_path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    sample = int(sys.argv[4]) if len(sys.argv) > 4 else 100
    exp = load(exp_path)
    keys = list(exp)
    res = {"keys": len(keys), "ok": 0, "unavailable": 0, "wrong": 0, "examples": []}

    def judge(proto, k, kind, got):
        if kind == "value" and got == exp[k]:
            res["ok"] += 1
        elif kind in ("error", "503"):
            res["unavailable"] += 1
        else:
            res["wrong"] += 1
            if len(res["examples"]) < 5:
                res["examples"].append("%s %r: %s %r (want %r)" % (proto, k, kind, got, exp[k][:60]))

    # RESP: pipelined GETs in rounds of 500.
    s = socket.create_connection(("127.0.0.1", rport), timeout=30)
    rd = RespReader(s)
    for i in range(0, len(keys), 500):
        chunk = keys[i:i + 500]
        s.sendall(b"".join(b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(k), k) for k in chunk))
        for k in chunk:
            kind, got = rd.reply()
            judge("resp", k, kind, got)
    s.close()

    def norm(v):
        return json.dumps(v, sort_keys=True, separators=(",", ":"))

    c = http.client.HTTPConnection("127.0.0.1", hport, timeout=30)
    for i in range(0, len(keys), 100):
        chunk = keys[i:i + 100]
        c.request("POST", "/v1/predictions:batchGet", body=json.dumps([k.decode() for k in chunk]))
        r = c.getresponse()
        body = r.read()
        if r.status == 503:
            for k in chunk:
                judge("http-batch", k, "503", None)
            continue
        if r.status != 200:
            for k in chunk:
                judge("http-batch", k, "status %d" % r.status, body[:100])
            continue
        results = json.loads(body)["results"]
        for k, x in zip(chunk, results):
            if x.get("found") and norm(x["value"]) == norm(json.loads(exp[k])):
                judge("http-batch", k, "value", exp[k])
            else:
                judge("http-batch", k, "found" if x.get("found") else "miss", json.dumps(x)[:100])
    rnd = random.Random(len(keys))
    for k in rnd.sample(keys, min(sample, len(keys))):
        c.request("GET", "/v1/predictions/" + k.decode())
        r = c.getresponse()
        body = r.read()
        if r.status == 200 and norm(json.loads(body)["value"]) == norm(json.loads(exp[k])):
            judge("http", k, "value", exp[k])
        elif r.status == 503:
            judge("http", k, "503", None)
        else:
            judge("http", k, "status %d" % r.status, body[:100])
    c.close()
    print(json.dumps(res))
    sys.exit(1 if res["wrong"] else 0)


if __name__ == "__main__":
    try:
        main()
    except (OSError, EOFError, ValueError) as e:
        print(json.dumps({"error": "%s: %s" % (type(e).__name__, e)}))
        sys.exit(2)
