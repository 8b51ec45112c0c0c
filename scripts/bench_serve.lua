-- wrk -s scripts/bench_serve.lua http://HOST:PORT  (scripts/bench_serve.sh, `make bench-serve`)
--
-- Each request is GET /v1/predictions/key:%012d for a uniform random number in [0, KEYS)
-- (KEYS from the environment variable BENCH_KEYS, default 1,000,000): the keys
-- redis-benchmark -r KEYS asks for.  Each wrk thread seeds its own generator with its
-- number.  At the end one line on stdout for the driver to parse:
--   wrk_summary: requests=N seconds=S req_per_s=R p50_ms=A p99_ms=B non2xx=N errors=N
-- (errors: connect + read + write + timeout; non2xx: responses with status >= 400).

local keys = tonumber(os.getenv("BENCH_KEYS") or "1000000")
local counter = 0

function setup(thread)
    counter = counter + 1
    thread:set("seed", counter)
end

function init(args)
    math.randomseed(seed or 1)
end

function request()
    return wrk.format("GET", string.format("/v1/predictions/key:%012d", math.random(0, keys - 1)))
end

function done(summary, latency, requests)
    local e = summary.errors
    local seconds = summary.duration / 1e6
    io.write(string.format(
        "wrk_summary: requests=%d seconds=%.3f req_per_s=%.0f p50_ms=%.3f p99_ms=%.3f non2xx=%d errors=%d\n",
        summary.requests, seconds, summary.requests / seconds,
        latency:percentile(50) / 1000, latency:percentile(99) / 1000,
        e.status, e.connect + e.read + e.write + e.timeout))
end
