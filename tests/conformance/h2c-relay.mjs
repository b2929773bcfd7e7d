// An HTTP/1.1 front that relays every request to an HTTP/2 server as prior-knowledge h2c, for
// running the conformance suite (whose client, Node's fetch, speaks no h2c) against the server's
// h2c path: `H2C=1 tests/conformance/run.sh`.
//
//   node tests/conformance/h2c-relay.mjs UPSTREAM_PORT      # prints "relay on http://127.0.0.1:PORT/mcp"
//
// Loopback only. Every request of the suite reaches the server over one shared h2c session, as
// its own HTTP/2 stream: method, path and headers as received (Host becomes :authority; the
// HTTP/1.1 connection headers, which HTTP/2 forbids, are dropped), the body streamed both ways
// (SSE included), and a client that goes away resets its stream (which cancels at 2026-07-28).
// Nothing is rewritten or retried, so the suite sees the server's HTTP/2 answers as they are.
import http from 'node:http';
import http2 from 'node:http2';

const upstreamPort = Number(process.argv[2]);
if (!upstreamPort) {
  console.error('usage: node h2c-relay.mjs UPSTREAM_PORT');
  process.exit(2);
}

// RFC 9113 section 8.2.2: connection-specific fields must not appear in HTTP/2.
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'host', 'http2-settings']);

let session = null;
let streams = 0;
function upstream() {
  if (!session || session.closed || session.destroyed) {
    session = http2.connect(`http://127.0.0.1:${upstreamPort}`);
    session.on('error', (e) => console.error(`relay: h2c session error: ${e.message}`));
    session.on('connect', () => console.error('relay: h2c session up'));
  }
  return session;
}

const server = http.createServer((req, res) => {
  const headers = {
    ':method': req.method,
    ':path': req.url,
    ':scheme': 'http',
    ':authority': req.headers.host ?? `127.0.0.1:${upstreamPort}`,
  };
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i].toLowerCase();
    if (HOP.has(name)) continue;
    const value = req.rawHeaders[i + 1];
    headers[name] = headers[name] === undefined ? value : [].concat(headers[name], value);
  }
  streams++;
  let stream;
  try {
    stream = upstream().request(headers);
  } catch (e) {
    res.writeHead(502).end(`relay: ${e.message}`);
    return;
  }
  let answered = false;
  stream.on('response', (h) => {
    answered = true;
    const out = {};
    for (const [k, v] of Object.entries(h)) if (!k.startsWith(':')) out[k] = v;
    res.writeHead(h[':status'], out);
    res.flushHeaders();
    stream.on('data', (chunk) => res.write(chunk));
    stream.on('end', () => res.end());
  });
  stream.on('error', (e) => {
    if (!answered) res.writeHead(502).end(`relay: ${e.message}`);
    else res.destroy();
  });
  stream.on('close', () => {
    if (!answered && !res.headersSent) res.writeHead(502).end('relay: stream closed');
    else if (!res.writableEnded) res.end();
  });
  req.pipe(stream);
  // The client went away before the answer ended: reset the stream, as a closed HTTP/2
  // response would be.
  res.on('close', () => {
    if (!res.writableFinished && !stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  console.log(`relay on http://127.0.0.1:${server.address().port}/mcp`);
});
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    console.error(`relay: ${streams} requests relayed as h2c streams`);
    process.exit(0);
  });
}
