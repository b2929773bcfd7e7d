// TypeScript SDK v1 (`@modelcontextprotocol/sdk` 1.x) against the real vouch-mcp.
// The 1.x client speaks only the initialize era (it offers 2025-11-25, its LATEST_PROTOCOL_VERSION).

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError, extractWWWAuthenticateParams } from '@modelcontextprotocol/sdk/client/auth.js';
import {
  assert,
  check,
  env,
  finish,
  mint,
  mintExpired,
  recordingFetch,
  whoamiOf,
  textOf,
  assertChallenge,
} from './harness.mjs';

const p = (name) => `legacy: ${name}`;
const who = 'ts-v1';

function newClient() {
  return new Client({ name: 'vouch-interop-ts-v1', version: '1.0.0' });
}

/** Connects with a static `Authorization: Bearer` header (none when `token` is undefined). */
async function connect(token, rec) {
  const headers = token === undefined ? {} : { Authorization: `Bearer ${token}` };
  const transport = new StreamableHTTPClientTransport(new URL(env.mcpUrl), {
    requestInit: { headers },
    ...(rec ? { fetch: rec.fetch } : {}),
  });
  const client = newClient();
  await client.connect(transport);
  return { client, transport };
}

const plainToken = await mint({ sub: who, email: `${who}@example.com` });
const hwToken = await mint({ sub: `${who}-hw`, email: `${who}-hw@example.com`, hardware_verified: true });

let plain;
const plainRec = recordingFetch();
await check(p('connect with a bearer token'), async () => {
  plain = await connect(plainToken, plainRec);
  assert.equal(plain.transport.protocolVersion, '2025-11-25');
  assert.ok(plain.transport.sessionId, 'initialize returned no Mcp-Session-Id');
  const init = plainRec.log[0];
  assert.equal(init.authorization, `Bearer ${plainToken}`);
});

await check(p('tools/list'), async () => {
  const { tools } = await plain.client.listTools();
  assert.deepEqual(tools.map((t) => t.name).sort(), ['sensitive-action', 'whoami']);
  const whoami = tools.find((t) => t.name === 'whoami');
  assert.deepEqual(whoami.outputSchema.required, ['email', 'sub', 'hardware_verified']);
});

await check(p('whoami matches the plain token'), async () => {
  const r = await plain.client.callTool({ name: 'whoami', arguments: {} });
  assert.deepEqual(whoamiOf(r), { email: `${who}@example.com`, sub: who, hardware_verified: false });
});

await check(p('sensitive-action with a plain token is isError'), async () => {
  const r = await plain.client.callTool({ name: 'sensitive-action', arguments: {} });
  assert.equal(r.isError, true);
  assert.equal(textOf(r).error, 'hardware_key_required');
});

await check(p('whoami and sensitive-action with a hardware-verified token'), async () => {
  const hw = await connect(hwToken);
  const w = await hw.client.callTool({ name: 'whoami', arguments: {} });
  assert.deepEqual(whoamiOf(w), { email: `${who}-hw@example.com`, sub: `${who}-hw`, hardware_verified: true });
  const r = await hw.client.callTool({ name: 'sensitive-action', arguments: {} });
  assert.ok(!r.isError, `isError: ${JSON.stringify(r.content)}`);
  assert.deepEqual(textOf(r), { status: 'success', hardware_aaguid: env.aaguid });
  await hw.client.close();
});

await check(p('DELETE terminates the session; the next call on it fails'), async () => {
  const sid = plain.transport.sessionId;
  await plain.transport.terminateSession();
  const del = plainRec.log.find((e) => e.method === 'DELETE');
  assert.ok(del, 'no DELETE was sent');
  assert.ok(del.status === 200 || del.status === 204, `DELETE answered ${del.status}`);
  assert.equal(plain.transport.sessionId, undefined, 'the transport kept the session id');
  await assert.rejects(plain.client.callTool({ name: 'whoami', arguments: {} }), StreamableHTTPError);
  // A request still carrying the terminated id is answered 404.
  const dead = new StreamableHTTPClientTransport(new URL(env.mcpUrl), {
    requestInit: { headers: { Authorization: `Bearer ${plainToken}` } },
    sessionId: sid,
    fetch: plainRec.fetch,
  });
  dead.setProtocolVersion('2025-11-25');
  await dead.start();
  const before = plainRec.log.length;
  const err = await dead
    .send({ jsonrpc: '2.0', id: 99, method: 'tools/call', params: { name: 'whoami', arguments: {} } })
    .then(() => undefined, (e) => e);
  assert.ok(err instanceof StreamableHTTPError, `expected StreamableHTTPError, got ${err}`);
  assert.equal(err.code, 404);
  const after = plainRec.log.slice(before).find((e) => e.method === 'POST');
  assert.equal(after.status, 404);
  await dead.close();
});
await plain.client.close();

/** Connects with a static header; returns the error and the recorded requests. */
async function rejected(token) {
  const rec = recordingFetch();
  let error;
  try {
    const c = await connect(token, rec);
    await c.client.close();
  } catch (e) {
    error = e;
  }
  return { error, rec };
}

await check(p('no token: the client surfaces a 401 carrying resource_metadata'), async () => {
  const { error, rec } = await rejected(undefined);
  assert.ok(error instanceof StreamableHTTPError, `expected StreamableHTTPError, got ${error}`);
  assert.equal(error.code, 401);
  assertChallenge(rec.log[0]);
  const res = new Response(null, { status: 401, headers: { 'www-authenticate': rec.log[0].wwwAuthenticate } });
  const params = extractWWWAuthenticateParams(res);
  assert.equal(params.resourceMetadataUrl?.href, env.prmUrl);
  assert.equal(params.error, undefined);
});

await check(p('expired token: the client surfaces a 401 invalid_token carrying resource_metadata'), async () => {
  const expired = await mintExpired(`${who}-expired`);
  const { error, rec } = await rejected(expired);
  assert.ok(error instanceof StreamableHTTPError, `expected StreamableHTTPError, got ${error}`);
  assert.equal(error.code, 401);
  assertChallenge(rec.log[0], { error: 'invalid_token' });
  const res = new Response(null, { status: 401, headers: { 'www-authenticate': rec.log[0].wwwAuthenticate } });
  const params = extractWWWAuthenticateParams(res);
  assert.equal(params.resourceMetadataUrl?.href, env.prmUrl);
  assert.equal(params.error, 'invalid_token');
});

await check(p("the client's OAuth discovery from the 401 (expired token): PRM, then AS metadata"), async () => {
  const expired = await mintExpired(`${who}-oauth`);
  const rec = recordingFetch();
  const seen = {};
  const provider = {
    get redirectUrl() {
      return 'http://localhost:1/callback';
    },
    get clientMetadata() {
      return { client_name: 'vouch-interop', redirect_uris: ['http://localhost:1/callback'] };
    },
    clientInformation: () => ({ client_id: 'vouch-interop' }),
    saveClientInformation: () => {},
    tokens: () => ({ access_token: expired, token_type: 'Bearer' }),
    saveTokens: () => {},
    redirectToAuthorization: (url) => {
      seen.authorizationUrl = url;
    },
    saveCodeVerifier: () => {},
    codeVerifier: () => 'unused',
    saveDiscoveryState: (s) => {
      seen.discovery = s;
    },
    discoveryState: () => undefined,
  };
  const transport = new StreamableHTTPClientTransport(new URL(env.mcpUrl), { authProvider: provider, fetch: rec.fetch });
  const client = newClient();
  const error = await client.connect(transport).then(() => undefined, (e) => e);
  await client.close().catch(() => {});
  assert.ok(error instanceof UnauthorizedError, `expected UnauthorizedError after the redirect, got ${error}`);
  const urls = rec.log.map((e) => `${e.method} ${e.url} ${e.status}`);
  assert.deepEqual(
    urls,
    [`POST ${env.mcpUrl} 401`, `GET ${env.prmUrl} 200`, `GET ${env.asMetadataUrl} 200`],
    `requests: ${JSON.stringify(urls)}`,
  );
  assert.equal(rec.log[0].authorization, `Bearer ${expired}`);
  assertChallenge(rec.log[0], { error: 'invalid_token' });
  const d = seen.discovery;
  assert.ok(d, 'saveDiscoveryState was not called');
  assert.equal(d.resourceMetadataUrl, env.prmUrl);
  assert.equal(d.resourceMetadata.resource, env.mcpUrl);
  assert.deepEqual(d.resourceMetadata.authorization_servers, [env.issuer]);
  assert.equal(d.authorizationServerUrl, env.issuer);
  assert.equal(d.authorizationServerMetadata.issuer, env.issuer);
  const a = seen.authorizationUrl;
  assert.ok(a, 'redirectToAuthorization was not called');
  assert.equal(`${a.origin}${a.pathname}`, `${env.issuer}/authorize`);
  assert.equal(a.searchParams.get('resource'), env.mcpUrl);
  assert.equal(a.searchParams.get('client_id'), 'vouch-interop');
  assert.equal(a.searchParams.get('code_challenge_method'), 'S256');
});

finish();
