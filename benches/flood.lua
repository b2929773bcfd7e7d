-- wrk script: a bad-signature flood. tools/call whoami with the forged token from FORGED (the
-- right kid, one signature bit flipped). With DISTINCT=1 every request alters one more character
-- of the signature at random, so no two requests carry the same bytes and no cache can answer.
local token
local body = os.getenv("BODY")
local distinct = os.getenv("DISTINCT") == "1"
local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
local sig_start

function init(args)
  for line in io.lines(os.getenv("FORGED")) do
    if #line > 0 then token = line end
  end
  sig_start = #token - 85 -- the 86 characters of a 64-byte signature
  math.randomseed(os.time() + math.random(1000000))
end

function request()
  local t = token
  if distinct then
    -- Any character but the last (whose low bits must stay zero) may change.
    local at = sig_start + math.random(0, 84)
    local c = math.random(1, 64)
    t = t:sub(1, at - 1) .. alphabet:sub(c, c) .. t:sub(at + 1)
  end
  return wrk.format("POST", "/mcp", {
    ["Authorization"] = "Bearer " .. t,
    ["Content-Type"] = "application/json",
    ["Accept"] = "application/json, text/event-stream",
    ["MCP-Protocol-Version"] = "2026-07-28",
    ["Mcp-Method"] = "tools/call",
    ["Mcp-Name"] = "whoami",
  }, body)
end
