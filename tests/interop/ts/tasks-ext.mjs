// Tasks with a real client at 2026-07-28: `@modelcontextprotocol/ext-tasks` 0.2.2 (the tasks
// extension's own requester library, pinned by package-lock.json as a dependency of the pinned
// Inspector) drives the task protocol (server-directed creation, tasks/get polling, tasks/update
// with the input handler's answers, tasks/cancel) against examples/conformance.rs. The library
// leaves the wire to the host (`ConnectedMcpSessionPort`): the port below only frames each
// request for 2026-07-28 (`_meta`, `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`) and POSTs it.

import { withTasks, resultFromTaskOutcome } from '@modelcontextprotocol/ext-tasks/client';
import { assert, check, finish } from './harness.mjs';

const url = process.env.TASKS_URL;
if (!url) {
  console.log('FAIL environment -- TASKS_URL is not set (run through tests/interop/run.sh)');
  process.exit(2);
}
const p = (name) => `tasks extension 2026-07-28: ${name}`;
const EXT = 'io.modelcontextprotocol/tasks';
const capabilities = { elicitation: {}, extensions: { [EXT]: {} } };
let nextId = 1;
const seen = [];

/** One 2026-07-28 request: framed, POSTed, answered as JSON (or the result event of an SSE body). */
async function dispatch(request) {
  const req = { jsonrpc: '2.0', ...request, id: request.id ?? nextId++ };
  // The library declares the extension in the request's own capabilities; the host adds its own.
  const meta = req.params?._meta ?? {};
  const declared = meta['io.modelcontextprotocol/clientCapabilities'] ?? {};
  req.params = {
    ...(req.params ?? {}),
    _meta: {
      'io.modelcontextprotocol/protocolVersion': '2026-07-28',
      'io.modelcontextprotocol/clientInfo': { name: 'vouch-interop-ext-tasks', version: '1.0.0' },
      ...meta,
      'io.modelcontextprotocol/clientCapabilities': {
        ...capabilities,
        ...declared,
        extensions: { ...capabilities.extensions, ...(declared.extensions ?? {}) },
      },
    },
  };
  const headers = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'mcp-protocol-version': '2026-07-28',
    'mcp-method': req.method,
  };
  const name = req.params.taskId ?? req.params.name ?? req.params.uri;
  if (typeof name === 'string') headers['mcp-name'] = name;
  seen.push(req.method);
  const res = await fetch(url, { method: 'POST', headers, body: JSON.stringify(req) });
  const text = await res.text();
  let body;
  if ((res.headers.get('content-type') ?? '').includes('text/event-stream')) {
    const events = text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => JSON.parse(l.slice(6)));
    body = events.find((e) => e.id === req.id);
  } else {
    body = JSON.parse(text);
  }
  if (body.error) return { kind: 'error', error: body.error };
  return { kind: 'result', result: body.result };
}

const port = {
  endpointId: 'vouch-mcp-conformance-example',
  taskCapabilities: { generation: 'v2', capabilities: {} },
  dispatch,
  onServerRequest: () => () => {},
  onNotification: () => () => {},
  onInvalidated: () => () => {},
  invalidated: false,
};

const asked = [];
const session = withTasks(port, {
  onInputRequest: async (request) => {
    asked.push(request);
    return { action: 'accept', content: { confirm: true } };
  },
});

await check(p('a slow call becomes a task; the library polls it to its result'), async () => {
  seen.length = 0;
  const execution = await session.callTool('slow_compute', { seconds: 1, label: 'ext' });
  assert.equal(execution.kind, 'task', `kind ${execution.kind}`);
  const events = [];
  const { outcome } = await execution.settle({ onEvent: (e) => events.push(e) });
  assert.equal(outcome.status, 'completed', JSON.stringify(outcome));
  const result = resultFromTaskOutcome(outcome);
  assert.equal(result.content[0].text, 'ext: computed after 1 s');
  assert.ok(seen.includes('tasks/get'), seen.join(','));
});

await check(p('a fast call is answered directly (the server decides)'), async () => {
  const execution = await session.callTool('slow_compute', { seconds: 0, label: 'fast' });
  assert.equal(execution.kind, 'immediate');
  const { outcome } = await execution.settle();
  assert.equal(resultFromTaskOutcome(outcome).content[0].text, 'fast: computed after 0 s');
});

await check(p('input_required: the library answers through tasks/update and the task completes'), async () => {
  seen.length = 0;
  const execution = await session.callTool('confirm_delete', { filename: 'ext.txt' });
  assert.equal(execution.kind, 'task');
  const { outcome } = await execution.settle();
  assert.equal(resultFromTaskOutcome(outcome).content[0].text, 'Deleted ext.txt');
  assert.equal(asked.length, 1, JSON.stringify(asked));
  assert.equal(asked[0].kind, 'elicitation');
  assert.ok(seen.includes('tasks/update'), seen.join(','));
});

await check(p('two questions at once: both answered, the task completes'), async () => {
  asked.length = 0;
  const execution = await session.callTool('multi_input', {});
  const { outcome } = await execution.settle();
  assert.match(resultFromTaskOutcome(outcome).content[0].text, /2 answers/);
  assert.equal(asked.length, 2);
});

await check(p('cancel: the task ends cancelled'), async () => {
  const execution = await session.callTool('slow_compute', { seconds: 60, label: 'cancel-me' });
  assert.equal(execution.kind, 'task');
  await execution.cancel();
  const { outcome } = await execution.settle();
  assert.equal(outcome.status, 'cancelled', JSON.stringify(outcome));
});

await check(p('a tool error is a completed task with isError'), async () => {
  const execution = await session.callTool('failing_job', {});
  const { outcome } = await execution.settle();
  assert.equal(outcome.status, 'completed', JSON.stringify(outcome));
  assert.equal(resultFromTaskOutcome(outcome).isError, true);
});

await session.close?.();
finish();
