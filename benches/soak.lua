-- wrk script: the hardening soak. Run with one connection per thread (-tN -cN), so each thread's
-- responses arrive in the order of its requests and every answer is checked against what its
-- request expects. Rotates both protocol eras: 2026-07-28 whoami, sensitive-action, tools/list;
-- initialize (2025-03-26 and 2025-11-25, alternately), notifications/initialized, a session's
-- tools/call and tools/list, a batch on a 2025-03-26 session, DELETE of the thread's oldest
-- session; malformed and expired tokens (401), GET at 2026-07-28 (405), GET and DELETE of an
-- unknown session (404), /healthz and the metadata document.
--
-- TOKENS: a file of valid tokens, one a line (rotated); EXPIRED: an expired token; QUOTA:
-- requests per thread, after which the thread stops and leaves a file in DONE_DIR. Prints "soak: N requests, unexpected M".
local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

local tokens = {}
local expired = os.getenv("EXPIRED")
local quota = tonumber(os.getenv("QUOTA") or "100000")
local meta = '"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}'
local cycle = {
  "m_whoami", "m_sensitive", "m_list", "l_init", "l_note", "l_call", "m_bad", "m_whoami",
  "l_list", "l_batch", "m_expired", "get_2026", "m_whoami", "get_unknown", "delete_unknown",
  "l_delete", "healthz", "metadata",
}
local expect = {
  m_whoami = 200, m_sensitive = 200, m_list = 200, l_init = 200, l_note = 202, l_call = 200,
  m_bad = 401, l_list = 200, l_batch = 200, m_expired = 401, get_2026 = 405, get_unknown = 404,
  delete_unknown = 404, l_delete = 204, healthz = 200, metadata = 200,
}

-- Per-thread state (each thread has its own Lua state).
sent = {}
bad = {}
samples = {}
local pos = 0
local n_token = 0
local last = nil
local sessions = {} -- {id, version}, oldest first
local init_version = "2025-11-25"
local received = 0

function init(args)
  for line in io.lines(os.getenv("TOKENS")) do
    if #line > 0 then tokens[#tokens + 1] = line end
  end
  n_token = math.random(#tokens)
  pos = math.random(#cycle) - 1
end

local function token()
  n_token = n_token % #tokens + 1
  return tokens[n_token]
end

local function modern(tok, method, params, name)
  local h = {
    ["Authorization"] = "Bearer " .. tok, ["Content-Type"] = "application/json",
    ["Accept"] = "application/json, text/event-stream", ["MCP-Protocol-Version"] = "2026-07-28",
    ["Mcp-Method"] = method,
  }
  if name then h["Mcp-Name"] = name end
  local body = '{"jsonrpc":"2.0","id":1,"method":"' .. method .. '","params":{' .. params .. meta .. '}}'
  return wrk.format("POST", "/mcp", h, body)
end

local function legacy(tok, session, body)
  local h = {
    ["Authorization"] = "Bearer " .. tok, ["Content-Type"] = "application/json",
    ["Accept"] = "application/json, text/event-stream",
  }
  if session then h["Mcp-Session-Id"] = session.id end
  return wrk.format("POST", "/mcp", h, body)
end

local call_body = '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami","arguments":{}}}'

function request()
  pos = pos % #cycle + 1
  local kind = cycle[pos]
  local newest = sessions[#sessions]
  -- Kinds that need a session fall back to a 2026-07-28 whoami while the thread has none.
  if (kind == "l_note" or kind == "l_call" or kind == "l_list" or kind == "l_delete" or kind == "l_batch") and not newest then
    kind = "m_whoami"
  end
  if kind == "l_batch" and newest.version ~= "2025-03-26" then kind = "l_call" end
  last = kind
  sent[kind] = (sent[kind] or 0) + 1
  -- One principal's sessions all live in one session cap; every session is made and deleted
  -- by the same token (the first), so the thread's few open sessions stay under it.
  local owner = tokens[1]
  if kind == "m_whoami" then
    return modern(token(), "tools/call", '"name":"whoami","arguments":{},', "whoami")
  elseif kind == "m_sensitive" then
    return modern(token(), "tools/call", '"name":"sensitive-action","arguments":{},', "sensitive-action")
  elseif kind == "m_list" then
    return modern(token(), "tools/list", "", nil)
  elseif kind == "m_bad" then
    return modern("not-a-jwt", "tools/call", '"name":"whoami","arguments":{},', "whoami")
  elseif kind == "m_expired" then
    return modern(expired, "tools/call", '"name":"whoami","arguments":{},', "whoami")
  elseif kind == "l_init" then
    init_version = (init_version == "2025-11-25") and "2025-03-26" or "2025-11-25"
    return legacy(owner, nil, '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"'
      .. init_version .. '","capabilities":{},"clientInfo":{"name":"soak","version":"1"}}}')
  elseif kind == "l_note" then
    return legacy(owner, newest, '{"jsonrpc":"2.0","method":"notifications/initialized"}')
  elseif kind == "l_call" then
    return legacy(owner, newest, call_body)
  elseif kind == "l_list" then
    return legacy(owner, newest, '{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{}}')
  elseif kind == "l_batch" then
    return legacy(owner, newest, '[' .. call_body .. ',{"jsonrpc":"2.0","id":4,"method":"ping"}]')
  elseif kind == "l_delete" then
    local oldest = table.remove(sessions, 1)
    return wrk.format("DELETE", "/mcp", { ["Authorization"] = "Bearer " .. owner, ["Mcp-Session-Id"] = oldest.id })
  elseif kind == "get_2026" then
    return wrk.format("GET", "/mcp", { ["Authorization"] = "Bearer " .. token(),
      ["Accept"] = "text/event-stream", ["MCP-Protocol-Version"] = "2026-07-28" })
  elseif kind == "get_unknown" then
    return wrk.format("GET", "/mcp", { ["Authorization"] = "Bearer " .. token(),
      ["Accept"] = "text/event-stream", ["Mcp-Session-Id"] = "no-such-session" })
  elseif kind == "delete_unknown" then
    return wrk.format("DELETE", "/mcp", { ["Authorization"] = "Bearer " .. token(), ["Mcp-Session-Id"] = "no-such-session" })
  elseif kind == "healthz" then
    return wrk.format("GET", "/healthz")
  else
    return wrk.format("GET", "/.well-known/oauth-protected-resource/mcp")
  end
end

function response(status, headers, body)
  received = received + 1
  local kind = last
  local ok = status == expect[kind]
  if ok and kind == "l_init" then
    local id = headers["mcp-session-id"] or headers["Mcp-Session-Id"]
    local version = string.match(body, '"protocolVersion":"([%d%-]+)"')
    if id and version then
      sessions[#sessions + 1] = { id = id, version = version }
    else
      ok = false
    end
  end
  if ok and (kind == "m_whoami" or kind == "l_call") and not string.find(body, '"isError":false', 1, true) then
    ok = false
  end
  if not ok then
    bad[kind] = (bad[kind] or 0) + 1
    if #samples < 5 then
      samples[#samples + 1] = kind .. " -> " .. status .. " " .. string.sub(body or "", 1, 200)
    end
  end
  if received == quota then
    -- wrk waits out its -d duration even when every thread has stopped: the driver watches
    -- for these files and ends the run with SIGINT (wrk then reports as usual).
    local f = io.open(os.getenv("DONE_DIR") .. "/thread-" .. id, "w")
    if f then f:close() end
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local total, unexpected, kinds = 0, 0, {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("sent")) do
      kinds[k] = (kinds[k] or 0) + v
      total = total + v
    end
    for _, v in pairs(t:get("bad")) do unexpected = unexpected + v end
    for _, s in ipairs(t:get("samples")) do io.write("unexpected answer: " .. s .. "\n") end
  end
  local names = {}
  for k, _ in pairs(kinds) do names[#names + 1] = k end
  table.sort(names)
  local parts = {}
  for _, k in ipairs(names) do parts[#parts + 1] = k .. "=" .. kinds[k] end
  io.write(string.format("soak: %d requests, unexpected %d\n", summary.requests, unexpected))
  io.write("kinds: " .. table.concat(parts, " ") .. "\n")
end
