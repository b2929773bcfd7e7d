// The page's script (bundled by esbuild for the browser into bundle.js): the TypeScript SDK's
// browser client against vouch-mcp on another origin. Each check lands in window.__results
// ({name, ok, detail}) and in the table on the page; window.__done is set at the end.
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';

const params = new URLSearchParams(location.hash.slice(1));
const MCP_URL = params.get('mcp');
const TOKEN = params.get('token');
const results = (window.__results = []);
const table = document.getElementById('results');
document.getElementById('origins').textContent = `page ${location.origin} → server ${new URL(MCP_URL).origin}`;

function record(name, ok, detail) {
  results.push({ name, ok, detail: String(detail ?? '') });
  const row = table.insertRow();
  row.className = ok ? 'pass' : 'fail';
  row.insertCell().textContent = ok ? 'PASS' : 'FAIL';
  row.insertCell().textContent = name;
  row.insertCell().textContent = String(detail ?? '').slice(0, 160);
}

async function check(name, fn) {
  try {
    record(name, true, await fn());
  } catch (e) {
    record(name, false, e && e.stack ? e.stack.split('\n').slice(0, 2).join(' ') : e);
  }
}

function must(cond, what) {
  if (!cond) throw new Error(what);
}

/** fetch that remembers what the SDK sent and what came back (the cross-origin answers). */
function recordingFetch() {
  const seen = [];
  const f = async (url, init = {}) => {
    const resp = await fetch(url, init);
    const headers = new Headers(init.headers || {});
    seen.push({
      method: init.method || 'GET',
      accept: headers.get('accept') || '',
      status: resp.status,
      type: resp.headers.get('content-type') || '',
      session: resp.headers.get('mcp-session-id'),
    });
    return resp;
  };
  return { seen, fetch: f };
}

async function era(label, opts) {
  const rec = recordingFetch();
  const transport = new StreamableHTTPClientTransport(new URL(MCP_URL), {
    requestInit: { headers: { Authorization: `Bearer ${TOKEN}` } },
    fetch: rec.fetch,
  });
  const client = new Client({ name: 'vouch-browser-test', version: '1.0.0' }, opts);
  await check(`${label}: connect across origins`, async () => {
    await client.connect(transport);
    return `protocol ${client.getNegotiatedProtocolVersion?.() ?? '?'}`;
  });
  await check(`${label}: tools/list`, async () => {
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name).sort();
    must(names.includes('whoami') && names.includes('sensitive-action'), `tools: ${names}`);
    return names.join(', ');
  });
  await check(`${label}: whoami with the dev token`, async () => {
    const r = await client.callTool({ name: 'whoami', arguments: {} });
    must(!r.isError, JSON.stringify(r));
    must(r.structuredContent?.sub === 'dev-user', JSON.stringify(r.structuredContent));
    return JSON.stringify(r.structuredContent);
  });
  return { client, transport, rec };
}

/** Reads a held SSE response for `ms`; returns the bytes and the comments/events seen. */
async function hold(resp, ms) {
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const next = await Promise.race([
      reader.read(),
      new Promise((r) => setTimeout(() => r({ timeout: true }), until - Date.now())),
    ]);
    if (next.timeout) break;
    if (next.done) throw new Error(`the stream ended after ${text.length} bytes`);
    text += decoder.decode(next.value, { stream: true });
  }
  await reader.cancel();
  return text;
}

async function main() {
  // 1. The 401 challenge and the metadata document, read by the page through CORS.
  let metadataUrl;
  await check('401 challenge readable through CORS', async () => {
    const resp = await fetch(MCP_URL, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
    });
    must(resp.status === 401, `status ${resp.status}`);
    const challenge = resp.headers.get('WWW-Authenticate');
    must(challenge, 'WWW-Authenticate is not exposed to the page');
    metadataUrl = /resource_metadata="([^"]+)"/.exec(challenge)?.[1];
    must(metadataUrl, `no resource_metadata in ${challenge}`);
    return challenge;
  });
  await check('resource_metadata fetched through CORS', async () => {
    const resp = await fetch(metadataUrl);
    must(resp.ok, `status ${resp.status}`);
    const doc = await resp.json();
    must(doc.resource === MCP_URL, `resource ${doc.resource}`);
    must(Array.isArray(doc.authorization_servers) && doc.authorization_servers.length, 'no authorization_servers');
    return `resource=${doc.resource} authorization_servers=${doc.authorization_servers}`;
  });

  // 2. The 2026-07-28 era (stateless), pinned.
  const modern = await era('2026-07-28', { versionNegotiation: { mode: { pin: '2026-07-28' } } });
  await check('2026-07-28: no session, every call a plain POST', async () => {
    must(modern.rec.seen.every((r) => !r.session), 'a session id appeared');
    return `${modern.rec.seen.length} requests`;
  });
  await modern.client.close();

  // 3. The initialize era (the SDK's default handshake): a session and its GET stream.
  const legacy = await era('2025-11-25', {});
  let sid;
  await check('2025-11-25: session and the SDK\'s own SSE stream', async () => {
    sid = legacy.transport.sessionId;
    must(sid, 'no session id');
    // The SDK opens the standalone GET stream after initialization; wait for it.
    const until = Date.now() + 5000;
    let get;
    while (!(get = legacy.rec.seen.find((r) => r.method === 'GET')) && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 50));
    }
    must(get, 'the SDK opened no GET stream');
    must(get.status === 200 && get.type.startsWith('text/event-stream'), JSON.stringify(get));
    return `session ${sid.slice(0, 8)}…, GET ${get.status} ${get.type}`;
  });
  await check('2025-11-25: an SSE stream held open from the page', async () => {
    // A session of the page's own (the SDK's session has its one standalone stream already;
    // a second would be 409), whose GET stream is read for 3.5 s of keep-alive comments.
    const auth = { Authorization: `Bearer ${TOKEN}` };
    const init = await fetch(MCP_URL, {
      method: 'POST',
      headers: { ...auth, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: {
        protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'page', version: '1' } } }),
    });
    const own = init.headers.get('Mcp-Session-Id');
    must(init.status === 200 && own, `initialize ${init.status}, session header ${own}`);
    const resp = await fetch(MCP_URL, {
      headers: { ...auth, Accept: 'text/event-stream', 'Mcp-Session-Id': own, 'MCP-Protocol-Version': '2025-11-25' },
    });
    if (resp.status !== 200) throw new Error(`GET ${resp.status}: ${await resp.text()}`);
    must(resp.headers.get('content-type').startsWith('text/event-stream'), resp.headers.get('content-type'));
    const text = await hold(resp, 3500);
    const comments = text.split('\n').filter((l) => l.startsWith(':')).length;
    must(comments >= 2, `after 3.5 s: ${JSON.stringify(text.slice(0, 300))}`);
    await fetch(MCP_URL, { method: 'DELETE', headers: { ...auth, 'Mcp-Session-Id': own, 'MCP-Protocol-Version': '2025-11-25' } });
    return `held 3.5 s: ${text.length} bytes, ${comments} keep-alive comments`;
  });
  await check('2025-11-25: calls still answered while streams are open', async () => {
    const r = await legacy.client.callTool({ name: 'whoami', arguments: {} });
    must(r.structuredContent?.sub === 'dev-user', JSON.stringify(r));
    return 'whoami ok';
  });
  await check('2025-11-25: session ended (DELETE)', async () => {
    await legacy.transport.terminateSession();
    const del = legacy.rec.seen.find((r) => r.method === 'DELETE');
    must(del && del.status === 204, JSON.stringify(del));
    return 'DELETE 204';
  });
  await legacy.client.close();
  window.__done = true;
  document.getElementById('state').textContent =
    `done: ${results.filter((r) => r.ok).length} passed, ${results.filter((r) => !r.ok).length} failed`;
}

main().catch((e) => {
  record('page script', false, e);
  window.__done = true;
});
