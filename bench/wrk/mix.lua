-- 90 % GET /tickets?limit=25, 10 % POST /tickets.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")
dofile(here .. "ticket_body.lua")
run_id = (os.getenv("THREADA_RUN") or "0") .. "m"
local n = 0
request = function()
  n = n + 1
  if n % 10 == 0 then
    return wrk.format("POST", "/api/v1/public/tickets", {["Content-Type"] = "application/json", ["X-Api-Key"] = key}, ticket_body())
  end
  return wrk.format("GET", "/api/v1/public/tickets?limit=25")
end
