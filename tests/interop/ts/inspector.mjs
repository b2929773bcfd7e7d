// MCP Inspector CLIs against the real vouch-mcp, asserting on their JSON output.
//   inspector-cli 1.0.3 (`@modelcontextprotocol/inspector-cli`, SDK 1.x): the initialize era only.
//   inspector 2.12.0 `--cli` (`@modelcontextprotocol/inspector`, SDK v2): `--protocol-era legacy` and `modern`.
// The era each run really used is read back from the server's request log (SERVER_LOG), by the token's sub.

import { spawn } from 'node:child_process';
import { readFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { assert, check, env, finish, mint } from './harness.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const modules = join(here, '..', 'node_modules', '@modelcontextprotocol');
const serverLog = process.env.SERVER_LOG;
const home = mkdtempSync(join(process.env.INTEROP_TMP || tmpdir(), 'inspector-home-'));

const configs = [
  {
    name: 'inspector-cli 1.0.3',
    era: 'legacy',
    // Its index.js picks `../package.json` by a path relative to the working directory (a client
    // quirk), so it runs from its own build directory.
    cwd: join(modules, 'inspector-cli', 'build'),
    argv: (method, header, extra) => [join(modules, 'inspector-cli', 'build', 'index.js'), env.mcpUrl, '--method', method, ...header, ...extra],
    result: (out) => JSON.parse(out),
  },
  ...['legacy', 'modern'].map((era) => ({
    name: 'inspector 2.12.0 --cli',
    era,
    cwd: here,
    argv: (method, header, extra) => [
      join(modules, 'inspector', 'clients', 'launcher', 'build', 'index.js'),
      '--cli',
      env.mcpUrl,
      '--method',
      method,
      '--protocol-era',
      era,
      '--format',
      'json',
      '--stored-auth-only',
      ...header,
      ...extra,
    ],
    result: (out) => JSON.parse(out).result,
  })),
];

function run(argv, cwd) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, argv, {
      cwd,
      env: { ...process.env, HOME: home, NO_COLOR: '1', CI: 'true' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

async function invoke(cfg, token, method, extra = []) {
  const header = token ? ['--header', `Authorization: Bearer ${token}`] : [];
  const r = await run(cfg.argv(method, header, extra), cfg.cwd);
  if (r.code !== 0) {
    throw new Error(`exit ${r.code}; stdout: ${r.stdout.slice(0, 400)}; stderr: ${r.stderr.slice(-400)}`);
  }
  try {
    return cfg.result(r.stdout);
  } catch (e) {
    throw new Error(`output is not JSON (${e.message}): ${r.stdout.slice(0, 400)}`);
  }
}

/** The server's log lines for requests made with `sub`. */
async function logLinesFor(sub) {
  assert.ok(serverLog, 'SERVER_LOG is not set');
  for (let i = 0; i < 20; i++) {
    const lines = readFileSync(serverLog, 'utf8').split('\n').filter((l) => l.includes(` sub=${sub}`));
    if (lines.some((l) => l.includes('rpc=tools/call'))) return lines;
    await new Promise((r) => setTimeout(r, 100));
  }
  return readFileSync(serverLog, 'utf8').split('\n').filter((l) => l.includes(` sub=${sub}`));
}

for (const cfg of configs) {
  const p = (name) => `${cfg.name} ${cfg.era}: ${name}`;
  const sub = `${cfg.name.split(' ')[0]}-${cfg.name.split(' ')[1]}-${cfg.era}`.replace(/[^a-z0-9.-]/gi, '');
  const plain = await mint({ sub, email: `${sub}@example.com` });
  const hw = await mint({ sub: `${sub}-hw`, email: `${sub}-hw@example.com`, hardware_verified: true });

  await check(p('tools/list with a bearer header'), async () => {
    const r = await invoke(cfg, plain, 'tools/list');
    assert.deepEqual(r.tools.map((t) => t.name).sort(), ['sensitive-action', 'whoami']);
  });

  await check(p('tools/call whoami matches the token'), async () => {
    const r = await invoke(cfg, plain, 'tools/call', ['--tool-name', 'whoami']);
    assert.equal(r.isError, false);
    assert.deepEqual(r.structuredContent, { email: `${sub}@example.com`, sub, hardware_verified: false });
    assert.deepEqual(JSON.parse(r.content[0].text), r.structuredContent);
  });

  await check(p('tools/call sensitive-action with a hardware-verified token'), async () => {
    const r = await invoke(cfg, hw, 'tools/call', ['--tool-name', 'sensitive-action']);
    assert.equal(r.isError, false);
    assert.deepEqual(JSON.parse(r.content[0].text), { status: 'success', hardware_aaguid: env.aaguid });
  });

  await check(p('the server saw the expected era'), async () => {
    const lines = await logLinesFor(sub);
    const discover = lines.filter((l) => l.includes('rpc=server/discover'));
    const init = lines.filter((l) => l.includes('rpc=initialize'));
    if (cfg.era === 'modern') {
      assert.ok(discover.length > 0, `no server/discover from ${sub}`);
      assert.equal(init.length, 0, `an initialize came from ${sub}`);
    } else {
      assert.ok(init.length > 0, `no initialize from ${sub}`);
      assert.ok(init.every((l) => l.includes('detail="version=2025-11-25"')), init.join(' / '));
      assert.equal(discover.length, 0, `a server/discover came from ${sub}`);
    }
  });

  if (cfg.name.startsWith('inspector 2')) {
    await check(p('no token: the CLI reports auth_required'), async () => {
      const r = await run(cfg.argv('tools/list', [], []), cfg.cwd);
      assert.notEqual(r.code, 0, 'the CLI succeeded without a token');
      const out = JSON.parse((r.stdout.trim() || r.stderr.trim()).split('\n').pop());
      assert.equal(out.error?.code, 'auth_required', JSON.stringify(out));
    });
  }
}

finish();
