"""Clients for tests/integration/test_serve.sh: raw HTTP and Redis-protocol exchanges with
`precast serve`, standard library only, so that malformed requests can be sent byte by byte.

  serve_client.py http PORT METHOD PATH [BODY]     -> prints "STATUS BODY"
  serve_client.py resp PORT HEX                     -> sends bytes.fromhex(HEX), prints the
                                                       reply bytes (repr) until EOF or 1 s idle
  serve_client.py reload HTTP_PORT RESP_PORT KEYS_FILE SECONDS OUT
        reads batches of keys over both protocols in a loop for SECONDS; every batch must
        succeed and hold values of one version (checked by the "top" list length, which
        differs between the test's two versions); writes a summary JSON to OUT
"""
import http.client
import json
import socket
import sys
import time


def http_req(port, method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def resp_raw(port, payload, idle=1.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=idle)
    s.sendall(payload)
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except socket.timeout:
        pass
    s.close()
    return out


def resp_cmd(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else a.encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


class RespConn:
    """A minimal blocking RESP2 client: enough for MGET replies."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def reply(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"*":
            return [self.reply() for _ in range(int(rest))]
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if t == b"-":
            raise RuntimeError(rest.decode())
        return rest

    def call(self, *args):
        self.s.sendall(resp_cmd(*args))
        return self.reply()


def top_len(value_json):
    return len(json.loads(value_json)["top"])


def reload_loop(http_port, resp_port, keys_file, seconds, out):
    keys = [k.strip() for k in open(keys_file) if k.strip()]
    conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10)
    rc = RespConn(resp_port)
    stats = {"batches": 0, "failures": [], "mixed": 0, "versions": [], "tops": []}
    end = time.time() + seconds
    i = 0
    while time.time() < end:
        batch = [keys[(i * 7 + j) % len(keys)] for j in range(25)]
        i += 1
        try:
            conn.request("POST", "/v1/predictions:batchGet", body=json.dumps({"keys": batch}))
            r = conn.getresponse()
            body = r.read()
            if r.status != 200:
                stats["failures"].append("http %d %s" % (r.status, body[:200]))
                continue
            doc = json.loads(body)
            tops = {top_len(x["value"] if isinstance(x["value"], str) else json.dumps(x["value"]))
                    for x in doc["results"] if x["found"]}
            if any(not x["found"] for x in doc["results"]):
                stats["failures"].append("http miss in a batch of present keys")
            vals = rc.call("MGET", *batch)
            rtops = {top_len(v) for v in vals if v is not None}
            if any(v is None for v in vals):
                stats["failures"].append("resp miss in a batch of present keys")
        except Exception as e:  # a failed request is what the test counts
            stats["failures"].append("%s: %s" % (type(e).__name__, e))
            conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10)
            rc = RespConn(resp_port)
            continue
        stats["batches"] += 1
        for t in (tops, rtops):
            if len(t) != 1:
                stats["mixed"] += 1
            else:
                v = next(iter(t))
                if not stats["tops"] or stats["tops"][-1] != v:
                    stats["tops"].append(v)
        if not stats["versions"] or stats["versions"][-1] != doc["version"]:
            stats["versions"].append(doc["version"])
    json.dump(stats, open(out, "w"))


def main():
    mode = sys.argv[1]
    if mode == "http":
        port, method, path = int(sys.argv[2]), sys.argv[3], sys.argv[4]
        body = sys.argv[5].encode() if len(sys.argv) > 5 else None
        status, data = http_req(port, method, path, body)
        sys.stdout.write("%d %s\n" % (status, data.decode("utf-8", "backslashreplace")))
    elif mode == "resp":
        sys.stdout.write(repr(resp_raw(int(sys.argv[2]), bytes.fromhex(sys.argv[3]))) + "\n")
    elif mode == "reload":
        reload_loop(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], float(sys.argv[5]), sys.argv[6])
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
