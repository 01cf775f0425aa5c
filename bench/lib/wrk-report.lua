-- Loaded into every wrk thread by lib/wrk.ts.
-- BENCH_WRK_METHOD and BENCH_WRK_BODY_BYTES (optional) make the request a
-- POST with a body of that many bytes: BODY_PATTERN repeated and cut, Host
-- then Content-Length, as lib/workload.ts builds it. The request stays
-- static (no global request() function), so wrk builds it once per thread.
-- BENCH_WRK_DELAY_MS > 0 paces each connection: it waits that many
-- milliseconds after each response before sending its next request (wrk's
-- delay() hook), which makes the offered rate about connections * 1000 / delay.
-- BENCH_WRK_STAGGER = N (the thread's connections): the thread's first N
-- pauses are drawn at random between 0 and the pause, so the connections
-- do not all send at the same instant, every pause after (the connections
-- then keep their phases apart).
-- done() prints one machine-readable line; percentiles come from wrk's own
-- latency histogram (microsecond resolution).
local BODY_PATTERN = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_"

local method = os.getenv("BENCH_WRK_METHOD")
if method and method ~= "" then wrk.method = method end
local bytes = tonumber(os.getenv("BENCH_WRK_BODY_BYTES") or "0")
if bytes > 0 then
  -- Formatted here: wrk.format's header order is that of a Lua table (it
  -- changed with the body's size). wrk.init calls wrk.format once per thread
  -- and serves what it returns; no global request() keeps the request static.
  local body = string.rep(BODY_PATTERN, math.ceil(bytes / #BODY_PATTERN)):sub(1, bytes)
  wrk.format = function()
    return string.format("%s %s HTTP/1.1\r\nHost: %s:%s\r\nContent-Length: %d\r\n\r\n", wrk.method, wrk.path, wrk.host, wrk.port, bytes) .. body
  end
end

local pause = tonumber(os.getenv("BENCH_WRK_DELAY_MS") or "0")
local stagger = tonumber(os.getenv("BENCH_WRK_STAGGER") or "0")
if pause > 0 then
  if stagger > 0 then
    -- Every thread's Lua state starts with the same seed: seed it by an address of its own.
    math.randomseed(tonumber(tostring({}):match("0x(%x+)") or "1", 16) % 2147483647)
    local first = 0
    function delay()
      if first < stagger then
        first = first + 1
        return math.random(0, pause)
      end
      return pause
    end
  else
    function delay()
      return pause
    end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local function p(q) return math.floor(latency:percentile(q)) end
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"mean_us":%.3f,"max_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.max, p(50), p(90), p(99), p(99.9)))
end
