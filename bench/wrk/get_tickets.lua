-- GET /api/v1/public/tickets?limit=25, first page, or the page of THREADA_TOKEN;
-- THREADA_QUERY (e.g. "q=refund") is appended to the query string.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")
local token = os.getenv("THREADA_TOKEN")
local path = "/api/v1/public/tickets?limit=25"
if token and token ~= "" then path = path .. "&page_token=" .. token end
local query = os.getenv("THREADA_QUERY")
if query and query ~= "" then path = path .. "&" .. query end
request = function()
  return wrk.format("GET", path)
end
