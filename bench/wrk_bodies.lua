-- wrk script: POST the JSON bodies of a file with one body per line (the first script argument), in
-- turn, one per request (a file of one line: the same body every time); print the latency
-- percentiles as one JSON line for bench/http_bench.py and bench/soak.py.
--   wrk -t2 -c8 -d10s -s bench/wrk_bodies.lua http://127.0.0.1:8000/cds-services/x -- bodies.jsonl
local requests_bytes = {}
local next_index = 1

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then
      requests_bytes[#requests_bytes + 1] = wrk.format("POST", nil, { ["Content-Type"] = "application/json" }, line)
    end
  end
  -- wrk threads each run this script: start them at different places in the list
  next_index = 1 + (math.random(#requests_bytes) - 1)
end

function request()
  local bytes = requests_bytes[next_index]
  next_index = next_index % #requests_bytes + 1
  return bytes
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, ' ..
    '"max_us": %d, "connect_errors": %d, "read_errors": %d, "write_errors": %d, "status_errors": %d, ' ..
    '"timeouts": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max, errors.connect, errors.read, errors.write, errors.status,
    errors.timeout))
end
