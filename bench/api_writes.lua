-- wrk script for bench/api.py: alternate opening a ticket and replying on the last one
-- this thread opened. The token comes from OPSDESK_BENCH_TOKEN.
local token = os.getenv("OPSDESK_BENCH_TOKEN")
local counter = 0
local last_ticket = nil
local thread_tag = tostring(math.random(1, 1000000000))

request = function()
  counter = counter + 1
  local headers = {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
  }
  if last_ticket == nil or counter % 2 == 1 then
    local body = string.format(
      '{"customer": {"email": "c%s-%d@bench.test", "name": "Customer"}, '
      .. '"subject": "Refund for a double charge", "channel": "email", '
      .. '"request_type": "refund", "body": "I was charged twice for May."}',
      thread_tag, counter)
    return wrk.format("POST", "/api/v1/tickets", headers, body)
  end
  return wrk.format("POST", "/api/v1/tickets/" .. last_ticket .. "/messages", headers,
    '{"body": "Looking into it now.", "visibility": "public"}')
end

response = function(status, headers, body)
  if status == 201 then
    local id = string.match(body, '^{"id":%s*(%d+)')
    if id ~= nil and string.find(body, '"subject"') then
      last_ticket = id
    end
  end
end
