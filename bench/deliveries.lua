-- wrk script: sends pre-signed webhook deliveries, each once, and reports as JSON.
--
-- bench/ingest.py signs the deliveries before the run (a Standard Webhooks signature is an
-- HMAC over the id, the timestamp and the body, which Lua here cannot compute) and writes
-- each wrk thread a file of complete HTTP requests, separated by NUL bytes. Each thread
-- sends its own in order; one that runs out starts again, and those repeats (duplicates,
-- which the service answers 200 without writing) are counted as "wrapped" so the caller can
-- tell the run was too long for what it signed.
--
--   wrk -t2 -c64 -d15s -s bench/deliveries.lua http://127.0.0.1:8080 -- <directory>

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

function init(args)
  local path = args[1] .. "/requests-" .. id
  local f = assert(io.open(path, "rb"))
  local data = f:read("*a")
  f:close()
  requests = {}
  for one in string.gmatch(data, "([^%z]+)%z") do
    requests[#requests + 1] = one
  end
  assert(#requests > 0, "no requests in " .. path)
  i = 0
  wrapped = 0
end

function request()
  i = i + 1
  if i > #requests then
    i = 1
    looped = true
  end
  if looped then
    wrapped = wrapped + 1
  end
  return requests[i]
end

function done(summary, latency, requests)
  local wraps = 0
  for _, thread in ipairs(threads) do
    wraps = wraps + (thread:get("wrapped") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    '\nRESULT {"requests": %d, "duration_us": %d, "wrapped": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, wraps,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
