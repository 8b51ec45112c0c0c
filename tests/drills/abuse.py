"""Drill 7's client (tests/drills/abuse.sh): precast serve under abuse. Standard library only.

  abuse.py HTTP_PORT RESP_PORT SERVER_PID KEYS_FILE IDLE_CONNS MALFORMED LOAD_SECONDS IDLE_TIMEOUT

1. slowloris: IDLE_CONNS connections (half HTTP, half RESP) each send half a request and go
   quiet; meanwhile a fresh client must be answered on both protocols; after IDLE_TIMEOUT + 3 s
   every idle connection must have been closed by the server.
2. MALFORMED malformed requests (HTTP and RESP mixes, each on its own connection); RSS
   (VmRSS of SERVER_PID) after them must be within 10% of RSS after the first 10%.
3. a steady load (200 requests/s, HTTP GET and RESP GET alternately on keep-alive connections)
   for LOAD_SECONDS: 0 errors, and RSS at the end within 10% of RSS at a quarter of the run.
Prints one line per part, "part: ok|FAIL ...", and exits 1 if any part failed."""
import http.client
import random
import resource
import socket
import sys
import time


def rss_kb(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return -1


def alive(pid):
    try:
        open("/proc/%d/status" % pid).close()
        return True
    except OSError:
        return False


def fresh_ok(hport, rport, key):
    c = http.client.HTTPConnection("127.0.0.1", hport, timeout=5)
    c.request("GET", "/v1/predictions/" + key)
    r = c.getresponse()
    r.read()
    c.close()
    s = socket.create_connection(("127.0.0.1", rport), timeout=5)
    k = key.encode()
    s.sendall(b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(k), k))
    d = s.recv(65536)
    s.close()
    return r.status == 200 and d.startswith(b"$")


def slowloris(hport, rport, pid, key, n, idle_timeout):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, n + 256)), hard))
    conns = []
    for i in range(n):
        if i % 2 == 0:
            s = socket.create_connection(("127.0.0.1", hport), timeout=5)
            s.sendall(b"GET /v1/predictions/" + key.encode() + b" HTTP/1.1\r\nHost: x\r\n")
        else:
            s = socket.create_connection(("127.0.0.1", rport), timeout=5)
            s.sendall(b"*2\r\n$3\r\nGE")
        conns.append(s)
    served = fresh_ok(hport, rport, key)
    time.sleep(idle_timeout + 3)
    closed = 0
    for s in conns:
        s.settimeout(2)
        try:
            if s.recv(65536) == b"":
                closed += 1
            else:  # an answer (e.g. 408) before the close: read to the end
                while s.recv(65536):
                    pass
                closed += 1
        except (ConnectionResetError, BrokenPipeError):
            closed += 1
        except socket.timeout:
            pass
        s.close()
    served_after = fresh_ok(hport, rport, key)
    ok = served and served_after and closed == n and alive(pid)
    print("slowloris: %s %d idle connections, %d closed by the server after the %d s idle timeout, a fresh client "
          "served during (%s) and after (%s)" % ("ok" if ok else "FAIL", n, closed, idle_timeout, served, served_after))
    return ok


HTTP_BAD = [
    b"GARBAGE\r\n\r\n",
    b"GET / HTTP/9.9\r\n\r\n",
    b"GET /v1/predictions/%ZZ HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /v1/predictions:batchGet HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n[\"a\",",
    b"POST /v1/predictions:batchGet HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    b"POST /v1/predictions:batchGet HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"POST /v1/predictions:batchGet HTTP/1.1\r\nHost: x\r\nContent-Length: 9999999999\r\n\r\n",
    b"GET /v1/predictions/" + b"k" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + b"X: " + b"y" * 20000 + b"\r\n\r\n",
    b"\x00\xff\xfe\r\n\r\n",
    b"POST /v1/predictions:batchGet HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n{\"keys\": [1]",
]
RESP_BAD = [
    b"*2\r\n$3\r\nGET\r\n$99999999999\r\n",
    b"*2147483648\r\n",
    b"*-5\r\n$3\r\nGET\r\n",
    b"*x\r\n",
    b"*2\r\n+GET\r\n",
    b"*2\r\n$3\r\nGETxx$1\r\na\r\n",
    b"$5\r\nhello\r\n",
    b"*1\r\n$0\r\n\r\n",
    b"*3\r\n$4\r\nMGET\r\n$1\r\na\r\n",
    b"\x00" * 100 + b"\r\n",
    b"*1\r\n$4\r\nPING\r\n" * 3 + b"*1\r\n$9999\r\nshort\r\n",
]


def malformed(hport, rport, pid, key, n):
    rnd = random.Random(7)
    base = None
    errors = 0
    for i in range(n):
        if i == n // 10:
            base = rss_kb(pid)
        http_side = i % 2 == 0
        if i % 5 == 4:  # random bytes
            payload = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 300)))
        else:
            payload = rnd.choice(HTTP_BAD if http_side else RESP_BAD)
        try:
            s = socket.create_connection(("127.0.0.1", hport if http_side else rport), timeout=5)
            s.sendall(payload)
            if i % 50 == 0:  # read a reply now and then; otherwise just hang up
                s.settimeout(0.5)
                try:
                    s.recv(65536)
                except socket.timeout:
                    pass
            s.close()
        except OSError:
            errors += 1
    end = rss_kb(pid)
    served = fresh_ok(hport, rport, key)
    ok = alive(pid) and served and end <= base * 1.10 and errors == 0
    print("malformed: %s %d requests (HTTP and RESP, crafted and random bytes), %d connection errors, "
          "RSS %d KiB after %d, %d KiB after all (%+.1f%%), served after: %s"
          % ("ok" if ok else "FAIL", n, errors, base, n // 10, end, 100.0 * (end - base) / base, served))
    return ok


def load(hport, rport, pid, keys, seconds, rate=200):
    c = http.client.HTTPConnection("127.0.0.1", hport, timeout=5)
    s = socket.create_connection(("127.0.0.1", rport), timeout=5)
    buf = b""
    start = time.time()
    n = errors = 0
    samples = []
    next_sample = start
    while True:
        now = time.time()
        if now - start >= seconds:
            break
        if now >= next_sample:
            samples.append((now - start, rss_kb(pid)))
            next_sample += max(1.0, seconds / 40)
        key = keys[n % len(keys)]
        try:
            if n % 2 == 0:
                c.request("GET", "/v1/predictions/" + key)
                r = c.getresponse()
                r.read()
                if r.status != 200:
                    errors += 1
            else:
                k = key.encode()
                s.sendall(b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(k), k))
                while b"\r\n" not in buf:
                    buf += s.recv(65536)
                head, _, rest = buf.partition(b"\r\n")
                ln = int(head[1:])
                while len(rest) < ln + 2:
                    rest += s.recv(65536)
                buf = rest[ln + 2:]
                if ln < 0:
                    errors += 1
        except (OSError, ValueError, http.client.HTTPException):
            errors += 1
            c = http.client.HTTPConnection("127.0.0.1", hport, timeout=5)
            s = socket.create_connection(("127.0.0.1", rport), timeout=5)
            buf = b""
        n += 1
        delay = start + n / rate - time.time()
        if delay > 0:
            time.sleep(delay)
    samples.append((time.time() - start, rss_kb(pid)))
    quarter = next(v for t, v in samples if t >= seconds / 4) if seconds >= 4 else samples[0][1]
    end = samples[-1][1]
    ok = errors == 0 and alive(pid) and end <= quarter * 1.10
    print("load: %s %d requests in %.0f s (%.0f/s, HTTP and RESP GETs), %d errors, RSS %d KiB at 1/4, %d KiB at the "
          "end (%+.1f%%), max %d KiB" % ("ok" if ok else "FAIL", n, seconds, n / seconds, errors, quarter, end,
                                          100.0 * (end - quarter) / quarter, max(v for _, v in samples)))
    return ok


def main():
    hport, rport, pid = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    keys = [k.strip() for k in open(sys.argv[4]) if k.strip()]
    idle, bad, secs, idle_timeout = int(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7]), int(sys.argv[8])
    results = [slowloris(hport, rport, pid, keys[0], idle, idle_timeout),
               malformed(hport, rport, pid, keys[0], bad),
               load(hport, rport, pid, keys, secs)]
    sys.stdout.flush()
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
