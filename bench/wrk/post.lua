-- POST one fixed JSON body on every request and print a one-line JSON summary at the end.
-- Inputs come from the environment, so no secret appears on a command line:
--   BENCH_BODY_FILE     path of the request body
--   BENCH_AUTH_HEADER   header name for the credential (optional)
--   BENCH_AUTH_VALUE    its value (optional)

local request_bytes

function init(args)
   local file = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
   local body = file:read("*a")
   file:close()
   local headers = { ["Content-Type"] = "application/json" }
   local name, value = os.getenv("BENCH_AUTH_HEADER"), os.getenv("BENCH_AUTH_VALUE")
   if name and name ~= "" and value then
      headers[name] = value
   end
   request_bytes = wrk.format("POST", nil, headers, body)
end

function request()
   return request_bytes
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
      '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
      '"latency_us": {"mean": %.1f, "p50": %d, "p90": %d, "p99": %d, "max": %d}}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.mean, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max))
end
