-- wrk script for the ingest benchmark (bench/ingest.py writes the events file).
--
-- Each line of $BENCH_EVENTS is "thread<TAB>signature<TAB>body": a pre-signed Zalo webhook.
-- Every wrk thread sends its own lines once (or $BENCH_REPEAT times), in order, over its
-- keep-alive connections, then
-- stops and drops a marker file in $BENCH_DONE_DIR (bench/ingest.py then ends wrk, whose own
-- clock would otherwise run to -d). Times come from CLOCK_MONOTONIC through LuaJIT's ffi.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end

local counter = 0
local threads = {}

function setup(thread)
  thread:set("id", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

function init(args)
  local path = os.getenv("BENCH_EVENTS")
  reqs = {}
  for line in io.lines(path) do
    local tid, sig, body = line:match("^(%d+)\t([^\t]+)\t(.*)$")
    if tid ~= nil and tonumber(tid) == id then
      reqs[#reqs + 1] = wrk.format("POST", "/zalo/webhook", {
        ["Content-Type"] = "application/json",
        ["X-ZEvent-Signature"] = sig,
      }, body)
    end
  end
  -- BENCH_REPEAT: send the lines that many times (for the bare endpoint, which keeps
  -- nothing, so that its run lasts long enough to be measured)
  total = #reqs * (tonumber(os.getenv("BENCH_REPEAT") or "1") or 1)
  sent = 0
  responses = 0
  non200 = 0
  first = 0
  last = 0
  finished = 0
end

function request()
  if first == 0 then first = now() end
  sent = sent + 1
  -- Past the end only while the last answers are awaited (at most one per connection);
  -- those extra requests are re-deliveries, which the service recognises as duplicates.
  local i = ((sent - 1) % #reqs) + 1
  return reqs[i]
end

function response(status, headers, body)
  responses = responses + 1
  if status ~= 200 then non200 = non200 + 1 end
  if responses == total then
    last = now()
    finished = 1
    local done_dir = os.getenv("BENCH_DONE_DIR")
    if done_dir ~= nil then
      local f = io.open(done_dir .. "/done-" .. id, "w")
      if f ~= nil then
        f:write(string.format("%d\n", responses))
        f:close()
      end
    end
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local first_all, last_all, responses_all, non200_all, unfinished = nil, 0, 0, 0, 0
  for _, t in ipairs(threads) do
    local f, l = t:get("first"), t:get("last")
    if f ~= nil and f > 0 and (first_all == nil or f < first_all) then first_all = f end
    if l ~= nil and l > last_all then last_all = l end
    responses_all = responses_all + (t:get("responses") or 0)
    non200_all = non200_all + (t:get("non200") or 0)
    if (t:get("finished") or 0) == 0 then unfinished = unfinished + 1 end
  end
  local window = 0
  if first_all ~= nil and last_all > first_all and unfinished == 0 then
    window = last_all - first_all
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "responses": %d, "non200": %d, "window_s": %.6f, '
      .. '"wrk_duration_s": %.6f, "unfinished_threads": %d, '
      .. '"latency_ms": {"p50": %.3f, "p90": %.3f, "p99": %.3f, "max": %.3f, "mean": %.3f}, '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}}\n',
    summary.requests, responses_all, non200_all, window, summary.duration / 1e6, unfinished,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, latency.mean / 1000,
    e.connect, e.read, e.write, e.status, e.timeout))
end
