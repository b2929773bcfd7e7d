-- wrk script: tools/call whoami (2026-07-28), each request with the next token of a pool, so
-- every token is presented once per cycle. Pool file from the TOKENS environment variable; each
-- wrk thread starts at a different offset.
local tokens = {}
local index = 0
local body = os.getenv("BODY")

function init(args)
  for line in io.lines(os.getenv("TOKENS")) do
    if #line > 0 then tokens[#tokens + 1] = line end
  end
  index = math.random(#tokens)
end

function request()
  index = index % #tokens + 1
  return wrk.format("POST", "/mcp", {
    ["Authorization"] = "Bearer " .. tokens[index],
    ["Content-Type"] = "application/json",
    ["Accept"] = "application/json, text/event-stream",
    ["MCP-Protocol-Version"] = "2026-07-28",
    ["Mcp-Method"] = "tools/call",
    ["Mcp-Name"] = "whoami",
  }, body)
end

function done(summary, latency, requests)
  io.write(string.format("errors: connect %d read %d write %d timeout %d; non-2xx/3xx: %d\n",
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout,
    summary.errors.status))
end
