-- POST /api/v1/public/tickets/{id}/messages, cycling over THREADA_TICKETS.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")
local ids = split(os.getenv("THREADA_TICKETS"))
local i = 0
wrk.headers["Content-Type"] = "application/json"
local body = [[{"role":"agent","content":"Thanks for your patience, your replacement ships today."}]]
request = function()
  i = i % #ids + 1
  return wrk.format("POST", "/api/v1/public/tickets/" .. ids[i] .. "/messages", nil, body)
end
