-- Loaded into every wrk thread by lib/wrk.ts.
-- BENCH_WRK_DELAY_MS > 0 paces each connection: it waits that many
-- milliseconds after each response before sending its next request (wrk's
-- delay() hook), which makes the offered rate about connections * 1000 / delay.
-- done() prints one machine-readable line; percentiles come from wrk's own
-- latency histogram (microsecond resolution).
local pause = tonumber(os.getenv("BENCH_WRK_DELAY_MS") or "0")
if pause > 0 then
  function delay()
    return pause
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
