-- The seed's create body with a distinct external_message_id per request.
local n = 0
function ticket_body()
  n = n + 1
  return string.format([[{"subject":"SUBJECT","priority":"normal","channel":"email","contact":{"name":"CUSTOMER_NAME","email":"customer@example.com"},"tags":["returns"],"initial_message":{"role":"user","content":"MESSAGE_BODY","external_message_id":"wrk-%s-%d-%d"}}]],
    run_id, thread_id or 0, n)
end
