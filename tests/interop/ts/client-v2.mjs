// TypeScript SDK v2 (`@modelcontextprotocol/client`) against the real vouch-mcp.
// Usage: node client-v2.mjs legacy|modern
//   legacy: the default 2025 handshake (initialize + Mcp-Session-Id).
//   modern: versionNegotiation pinned to 2026-07-28 (server/discover, stateless, per-request _meta).

import {
  Client,
  StreamableHTTPClientTransport,
  UnauthorizedError,
  SdkHttpError,
  extractWWWAuthenticateParams,
} from '@modelcontextprotocol/client';
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

const era = process.argv[2];
if (era !== 'legacy' && era !== 'modern') {
  console.log(`FAIL arguments -- expected legacy|modern, got ${era}`);
  process.exit(2);
}
const MODERN = '2026-07-28';
const p = (name) => `${era}: ${name}`;
const who = `ts-v2-${era}`;

function newClient() {
  const opts = era === 'modern' ? { versionNegotiation: { mode: { pin: MODERN } } } : {};
  return new Client({ name: 'vouch-interop-ts-v2', version: '1.0.0' }, opts);
}

/** Connects with a static `Authorization: Bearer` header on every request. */
async function connect(token, rec) {
  const transport = new StreamableHTTPClientTransport(new URL(env.mcpUrl), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
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
  const v = plain.client.getNegotiatedProtocolVersion();
  if (era === 'modern') {
    assert.equal(v, MODERN);
    assert.equal(plain.client.getProtocolEra(), 'modern');
    assert.equal(plain.transport.sessionId, undefined, 'a 2026-07-28 exchange has no session');
    assert.ok(plainRec.log.some((e) => e.method === 'POST'), 'no POST was made');
  } else {
    assert.equal(v, '2025-11-25');
    assert.ok(plain.transport.sessionId, 'initialize returned no Mcp-Session-Id');
  }
});

await check(p('tools/list'), async () => {
  const { tools } = await plain.client.listTools();
  const names = tools.map((t) => t.name).sort();
  assert.deepEqual(names, ['sensitive-action', 'whoami']);
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

if (era === 'legacy') {
  await check(p('DELETE terminates the session; the next call on it fails'), async () => {
    const sid = plain.transport.sessionId;
    await plain.transport.terminateSession();
    const del = plainRec.log.find((e) => e.method === 'DELETE');
    assert.ok(del, 'no DELETE was sent');
    assert.ok(del.status === 200 || del.status === 204, `DELETE answered ${del.status}`);
    assert.equal(plain.transport.sessionId, undefined, 'the transport kept the session id');
    // The client's own next call fails: the SDK dropped the id, and the server wants one.
    await assert.rejects(plain.client.callTool({ name: 'whoami', arguments: {} }), SdkHttpError);
    // A call that still carries the terminated id is answered 404 (Streamable HTTP, session management).
    const dead = new StreamableHTTPClientTransport(new URL(env.mcpUrl), {
      requestInit: { headers: { Authorization: `Bearer ${plainToken}` } },
      sessionId: sid,
      protocolVersion: '2025-11-25',
      fetch: plainRec.fetch,
    });
    await dead.start();
    const before = plainRec.log.length;
    const got = await new Promise((resolve) => {
      dead.onmessage = (m) => resolve({ message: m });
      dead.onerror = (e) => resolve({ error: e });
      dead
        .send({ jsonrpc: '2.0', id: 99, method: 'tools/call', params: { name: 'whoami', arguments: {} } })
        .catch((e) => resolve({ error: e }));
    });
    assert.ok(got.error, `the call on the terminated session succeeded: ${JSON.stringify(got.message)}`);
    assert.ok(SdkHttpError.isInstance(got.error), `not an SdkHttpError: ${got.error}`);
    const after = plainRec.log.slice(before).find((e) => e.method === 'POST');
    assert.equal(after.status, 404, `a terminated session must answer 404, got ${after.status}`);
    await dead.close();
  });
} else {
  await check(p("versionNegotiation 'auto' probes server/discover and selects 2026-07-28"), async () => {
    const rec = recordingFetch();
    const transport = new StreamableHTTPClientTransport(new URL(env.mcpUrl), {
      requestInit: { headers: { Authorization: `Bearer ${plainToken}` } },
      fetch: rec.fetch,
    });
    const client = new Client({ name: 'vouch-interop-ts-v2', version: '1.0.0' }, { versionNegotiation: { mode: 'auto' } });
    await client.connect(transport);
    assert.equal(client.getNegotiatedProtocolVersion(), MODERN);
    assert.equal(client.getProtocolEra(), 'modern');
    assert.deepEqual(client.getDiscoverResult()?.supportedVersions?.[0], MODERN);
    const r = await client.callTool({ name: 'whoami', arguments: {} });
    assert.equal(whoamiOf(r).sub, who);
    assert.equal(transport.sessionId, undefined);
    await client.close();
  });

  await check(p('no Mcp-Session-Id is issued or sent'), async () => {
    assert.equal(plain.transport.sessionId, undefined);
    await plain.client.callTool({ name: 'whoami', arguments: {} });
    assert.equal(plain.transport.sessionId, undefined);
  });
}
await plain.client.close();

/** Connects with a bearer AuthProvider whose onUnauthorized records the 401 the transport got. */
async function rejected(token) {
  const seen = [];
  const rec = recordingFetch();
  const transport = new StreamableHTTPClientTransport(new URL(env.mcpUrl), {
    authProvider: {
      token: async () => token,
      onUnauthorized: async (ctx) => {
        seen.push({ status: ctx.response.status, params: extractWWWAuthenticateParams(ctx.response) });
      },
    },
    fetch: rec.fetch,
  });
  const client = newClient();
  let error;
  try {
    await client.connect(transport);
  } catch (e) {
    error = e;
  }
  await client.close().catch(() => {});
  return { error, seen, rec };
}

await check(p('no token: the client surfaces a 401 carrying resource_metadata'), async () => {
  const { error, seen, rec } = await rejected(undefined);
  assert.ok(error, 'connect succeeded without a token');
  assert.ok(SdkHttpError.isInstance(error) || UnauthorizedError.isInstance(error), `unexpected error: ${error}`);
  assert.equal(seen.length, 1, 'onUnauthorized was not called once');
  assert.equal(seen[0].status, 401);
  assert.equal(seen[0].params.resourceMetadataUrl?.href, env.prmUrl);
  assert.equal(seen[0].params.error, undefined, 'a request with no credentials gets no error code (RFC 6750 3.1)');
  assertChallenge(rec.log[0]);
  assert.equal(rec.log[0].method, 'POST');
});

await check(p('expired token: the client surfaces a 401 invalid_token carrying resource_metadata'), async () => {
  const expired = await mintExpired(`${who}-expired`);
  const { error, seen, rec } = await rejected(expired);
  assert.ok(error, 'connect succeeded with an expired token');
  assert.equal(seen.length, 1, 'onUnauthorized was not called once');
  assert.equal(seen[0].status, 401);
  assert.equal(seen[0].params.resourceMetadataUrl?.href, env.prmUrl);
  assert.equal(seen[0].params.error, 'invalid_token');
  assertChallenge(rec.log[0], { error: 'invalid_token' });
});

await check(p("the client's OAuth discovery from the 401: PRM, then AS metadata"), async () => {
  const rec = recordingFetch();
  const seen = {};
  const provider = {
    get redirectUrl() {
      return 'http://localhost:1/callback';
    },
    get clientMetadata() {
      return { client_name: 'vouch-interop', redirect_uris: ['http://localhost:1/callback'] };
    },
    clientInformation: () => ({ client_id: 'vouch-interop', issuer: env.issuer }),
    saveClientInformation: () => {},
    tokens: () => undefined,
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
  let error;
  try {
    await client.connect(transport);
  } catch (e) {
    error = e;
  }
  await client.close().catch(() => {});
  assert.ok(UnauthorizedError.isInstance(error), `expected UnauthorizedError after the redirect, got ${error}`);
  const urls = rec.log.map((e) => `${e.method} ${e.url} ${e.status}`);
  assert.deepEqual(
    urls,
    [`POST ${env.mcpUrl} 401`, `GET ${env.prmUrl} 200`, `GET ${env.asMetadataUrl} 200`],
    `requests: ${JSON.stringify(urls)}`,
  );
  assertChallenge(rec.log[0]);
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
