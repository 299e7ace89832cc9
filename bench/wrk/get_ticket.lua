-- GET /api/v1/public/tickets/{id}, cycling over THREADA_TICKETS.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")
local ids = split(os.getenv("THREADA_TICKETS"))
local i = 0
request = function()
  i = i % #ids + 1
  return wrk.format("GET", "/api/v1/public/tickets/" .. ids[i])
end
