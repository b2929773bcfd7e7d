// Tasks with a real client: the TypeScript SDK v1 (`@modelcontextprotocol/sdk` 1.32.2), whose
// experimental tasks API speaks the 2025-11-25 tasks (SEP-1686), against examples/conformance.rs
// (its task fixtures; auth off, so TASKS_URL needs no token).

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CallToolResultSchema, ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { assert, check, finish } from './harness.mjs';

const url = process.env.TASKS_URL;
if (!url) {
  console.log('FAIL environment -- TASKS_URL is not set (run through tests/interop/run.sh)');
  process.exit(2);
}
const p = (name) => `tasks 2025-11-25: ${name}`;

async function connect(withElicitation) {
  const client = new Client(
    { name: 'vouch-interop-tasks-v1', version: '1.0.0' },
    { capabilities: withElicitation ? { elicitation: {} } : {} },
  );
  if (withElicitation) {
    client.setRequestHandler(ElicitRequestSchema, async (req) => {
      elicited.push(req.params);
      return { action: 'accept', content: { confirm: true } };
    });
  }
  const transport = new StreamableHTTPClientTransport(new URL(url));
  await client.connect(transport);
  return client;
}

const elicited = [];

/** Runs callToolStream to its end, returning every message. */
async function stream(client, name, args) {
  const out = [];
  for await (const m of client.experimental.tasks.callToolStream(
    { name, arguments: args },
    CallToolResultSchema,
    { task: { ttl: 60_000 } },
  )) {
    out.push(m);
  }
  return out;
}

let client;
await check(p('initialize advertises the tasks capability'), async () => {
  client = await connect(true);
  const caps = client.getServerCapabilities();
  assert.deepEqual(caps.tasks, { list: {}, cancel: {}, requests: { tools: { call: {} } } });
  const { tools } = await client.listTools();
  const slow = tools.find((t) => t.name === 'slow_compute');
  assert.equal(slow.execution?.taskSupport, 'optional');
});

let createdId;
await check(p('a task is created, polled and its result read (callToolStream)'), async () => {
  const msgs = await stream(client, 'slow_compute', { seconds: 1, label: 'interop' });
  const types = msgs.map((m) => m.type);
  assert.equal(types[0], 'taskCreated', types.join(','));
  assert.equal(msgs[0].task.status, 'working');
  createdId = msgs[0].task.taskId;
  assert.ok(types.includes('taskStatus'), types.join(','));
  const last = msgs.at(-1);
  assert.equal(last.type, 'result', JSON.stringify(last));
  assert.equal(last.result.content[0].text, 'interop: computed after 1 s');
  assert.equal(last.result._meta['io.modelcontextprotocol/related-task'].taskId, createdId);
});

await check(p('tasks/get and tasks/list show the completed task'), async () => {
  const task = await client.experimental.tasks.getTask(createdId);
  assert.equal(task.status, 'completed');
  assert.ok(typeof task.ttl === 'number' && task.ttl > 0, `ttl ${task.ttl}`);
  const { tasks } = await client.experimental.tasks.listTasks();
  assert.ok(tasks.some((t) => t.taskId === createdId), JSON.stringify(tasks));
});

await check(p('tasks/cancel cancels a running task'), async () => {
  const created = await client.request(
    { method: 'tools/call', params: { name: 'slow_compute', arguments: { seconds: 60 }, task: { ttl: 60_000 } } },
    (await import('@modelcontextprotocol/sdk/types.js')).CreateTaskResultSchema,
  );
  const id = created.task.taskId;
  const cancelled = await client.experimental.tasks.cancelTask(id);
  assert.equal(cancelled.status, 'cancelled');
  const again = await client.experimental.tasks.getTask(id);
  assert.equal(again.status, 'cancelled');
  await assert.rejects(client.experimental.tasks.cancelTask(id), /terminal|-32602/i);
});

await check(p('input_required: the elicitation arrives on tasks/result and the task completes'), async () => {
  const msgs = await stream(client, 'confirm_delete', { filename: 'interop.txt' });
  const last = msgs.at(-1);
  assert.equal(last.type, 'result', JSON.stringify(msgs.map((m) => m.type)));
  assert.equal(last.result.content[0].text, 'Deleted interop.txt');
  assert.equal(elicited.length, 1, JSON.stringify(elicited));
  assert.equal(elicited[0].message, 'Delete interop.txt?');
  assert.ok(elicited[0]._meta?.['io.modelcontextprotocol/related-task']?.taskId, JSON.stringify(elicited[0]));
});

await check(p('another session of the same (anonymous) principal sees the task; an unknown id is -32602'), async () => {
  const other = await connect(false);
  const task = await other.experimental.tasks.getTask(createdId);
  assert.equal(task.taskId, createdId);
  await assert.rejects(other.experimental.tasks.getTask('no-such-task'), /-32602|not found/i);
  await other.close();
});

await client?.close();
finish();
