// Shared by the TypeScript interop clients: check bookkeeping, token minting, request recording.
//
// Output protocol (read by run.sh): one line per check, `PASS <name>` or `FAIL <name> -- <why>`.
// Anything else a client prints is diagnostics and goes to the runner's log.

import assert from 'node:assert/strict';

export { assert };

/** Everything the runner hands a client, from the environment. */
export const env = {
  mcpUrl: need('MCP_URL'), // the resource URL, http://localhost:<port>/mcp
  issuer: need('DEV_ISSUER'), // http://127.0.0.1:<port>/dev
  prmUrl: need('PRM_URL'), // http://localhost:<port>/.well-known/oauth-protected-resource/mcp
  asMetadataUrl: need('AS_METADATA_URL'), // http://127.0.0.1:<port>/.well-known/oauth-authorization-server/dev
  aaguid: need('DEV_AAGUID'),
};

function need(name) {
  const v = process.env[name];
  if (!v) {
    console.log(`FAIL environment -- ${name} is not set (run through tests/interop/run.sh)`);
    process.exit(2);
  }
  return v;
}

let failed = 0;

/** Runs one check; a thrown error (assertion or client error) fails it. Never throws. */
export async function check(name, fn) {
  try {
    await withTimeout(fn(), 20_000, name);
    console.log(`PASS ${name}`);
  } catch (e) {
    failed++;
    const why = (e && (e.stack || e.message)) || String(e);
    console.log(`FAIL ${name} -- ${oneLine(why)}`);
  }
}

export function finish() {
  process.exit(failed ? 1 : 0);
}

function oneLine(s) {
  return String(s).split('\n').slice(0, 12).map((l) => l.trim()).join(' | ');
}

function withTimeout(p, ms, name) {
  let t;
  return Promise.race([
    Promise.resolve(p).finally(() => clearTimeout(t)),
    new Promise((_, reject) => {
      t = setTimeout(() => reject(new Error(`${name}: timed out after ${ms} ms`)), ms);
    }),
  ]);
}

/** Mints a token from the dev issuer (`POST {issuer}/token`). */
export async function mint({ sub, email, hardware_verified = false, ttl_secs = 600 }) {
  const res = await fetch(`${env.issuer}/token`, {
    method: 'POST',
    body: JSON.stringify({ sub, email, hardware_verified, ttl_secs }),
  });
  assert.equal(res.status, 200, `mint: HTTP ${res.status}`);
  const body = await res.json();
  assert.ok(body.access_token, 'mint: no access_token');
  return body.access_token;
}

/** A token that has already expired: the runner starts the server with --leeway-secs 0, so exp == now fails. */
export async function mintExpired(sub) {
  const t = await mint({ sub, email: `${sub}@example.com`, ttl_secs: 0 });
  await new Promise((r) => setTimeout(r, 1100));
  return t;
}

/** A fetch that records every request (method, url, Authorization) and response (status, WWW-Authenticate). */
export function recordingFetch() {
  const log = [];
  const f = async (input, init) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const method = (init && init.method) || (input && input.method) || 'GET';
    const auth = new Headers((init && init.headers) || (input && input.headers) || {}).get('authorization');
    const entry = { method, url, authorization: auth };
    log.push(entry);
    const res = await fetch(input, init);
    entry.status = res.status;
    entry.wwwAuthenticate = res.headers.get('www-authenticate');
    return res;
  };
  return { fetch: f, log };
}

/** The parsed structured result of whoami, cross-checked with its text content. */
export function whoamiOf(result) {
  assert.ok(!result.isError, `whoami returned isError: ${JSON.stringify(result.content)}`);
  const sc = result.structuredContent;
  assert.ok(sc && typeof sc === 'object', 'whoami has no structuredContent');
  const text = result.content.find((c) => c.type === 'text');
  assert.ok(text, 'whoami has no text content');
  assert.deepEqual(JSON.parse(text.text), sc, 'text content and structuredContent differ');
  return sc;
}

export function textOf(result) {
  const text = result.content.find((c) => c.type === 'text');
  assert.ok(text, `no text content in ${JSON.stringify(result)}`);
  return JSON.parse(text.text);
}

/** Asserts a recorded 401 carries our resource_metadata URL (and, optionally, an error code). */
export function assertChallenge(entry, { error } = {}) {
  assert.ok(entry, 'no request was recorded');
  assert.equal(entry.status, 401, `expected 401, got ${entry.status} for ${entry.method} ${entry.url}`);
  const h = entry.wwwAuthenticate || '';
  assert.match(h, /^Bearer /i, `WWW-Authenticate: ${h}`);
  assert.ok(h.includes(`resource_metadata="${env.prmUrl}"`), `WWW-Authenticate lacks resource_metadata="${env.prmUrl}": ${h}`);
  if (error) assert.ok(h.includes(`error="${error}"`), `WWW-Authenticate lacks error="${error}": ${h}`);
}
