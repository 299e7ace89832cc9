-- Shared by the scenario scripts: the API key and a machine-readable summary line.
-- Environment: THREADA_KEY (required), THREADA_TICKETS (comma-separated ticket ids,
-- for the per-ticket scenarios), THREADA_TOKEN (a page token, for the deep page).
key = os.getenv("THREADA_KEY")
wrk.headers["X-Api-Key"] = key

function split(text)
  local items = {}
  for item in string.gmatch(text or "", "[^,]+") do items[#items + 1] = item end
  return items
end

-- wrk runs each thread in its own Lua state; setup() numbers them.
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("thread_id", counter)
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK rps=%.1f p50_us=%d p99_us=%d requests=%d non2xx=%d sockerr=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50), latency:percentile(99),
    summary.requests, e.status, e.connect + e.read + e.write + e.timeout))
end
