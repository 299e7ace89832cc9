-- POST /api/v1/public/tickets with the seed body (distinct external ids).
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")
dofile(here .. "ticket_body.lua")
-- Each wrk run its own ids (scenarios repeat): a repeated external id is a 409.
run_id = (os.getenv("THREADA_RUN") or "0") .. "-" .. os.time() .. "-" .. math.floor(os.clock() * 1e6)
wrk.headers["Content-Type"] = "application/json"
request = function()
  return wrk.format("POST", "/api/v1/public/tickets", nil, ticket_body())
end
