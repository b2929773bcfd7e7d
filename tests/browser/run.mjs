// Drives Debian's headless Chromium (puppeteer-core; no browser download) to the test page,
// served here on one loopback origin, against vouch-mcp on another, and reports the page's checks.
//
//   node run.mjs MCP_URL TOKEN OUT_DIR
//
// Bundles page/app.js (the SDK's browser client) with esbuild for the browser, serves page/ on
// 127.0.0.1:<free port>, starts Chromium with a fresh profile and the flags this machine's
// closed network needs, waits (bounded) for the page to finish, saves OUT_DIR/browser.png and
// OUT_DIR/results.json, prints `PASS|FAIL name -- detail` per check, and exits non-zero on any
// failure. Chromium is always closed.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { launchChromium } from './chromium.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const [mcpUrl, token, outDir] = process.argv.slice(2);
if (!mcpUrl || !token || !outDir) {
  console.log('FAIL arguments -- usage: node run.mjs MCP_URL TOKEN OUT_DIR');
  process.exit(2);
}
fs.mkdirSync(outDir, { recursive: true });
/** The checks page/app.js makes; fewer means the page stopped early. */
const EXPECTED_CHECKS = 13;

// The SDK, for the browser: its `browser` export conditions, no Node built-ins.
const built = await esbuild.build({
  entryPoints: [path.join(here, 'page/app.js')],
  bundle: true,
  platform: 'browser',
  format: 'iife',
  target: 'chrome120',
  write: false,
  logLevel: 'silent',
});
const bundle = built.outputFiles[0].contents;
console.error(`bundled the SDK browser client: ${bundle.length} bytes`);

const files = {
  '/': ['text/html', fs.readFileSync(path.join(here, 'page/index.html'))],
  '/bundle.js': ['text/javascript', bundle],
};
const pages = http.createServer((req, res) => {
  const f = files[req.url.split('?')[0]];
  if (!f) return res.writeHead(404).end();
  res.writeHead(200, { 'Content-Type': f[0] }).end(f[1]);
});
await new Promise((r) => pages.listen(0, '127.0.0.1', r));
const pageOrigin = `http://127.0.0.1:${pages.address().port}`;

const { browser, close: closeChromium } = await launchChromium({ width: 1100, height: 800 });
let failed = 0;
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1100, height: 800 });
  const logs = [];
  page.on('console', (m) => logs.push(`console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
  page.on('requestfailed', (r) => logs.push(`requestfailed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`));
  const target = `${pageOrigin}/#${new URLSearchParams({ mcp: mcpUrl, token })}`;
  await page.goto(target, { waitUntil: 'load', timeout: 20_000 });
  await page.waitForFunction('window.__done === true', { timeout: 60_000, polling: 100 }).catch((e) => {
    logs.push(`the page did not finish: ${e.message}`);
  });
  const results = await page.evaluate(() => window.__results || []);
  await page.screenshot({ path: path.join(outDir, 'browser.png'), fullPage: true });
  fs.writeFileSync(path.join(outDir, 'results.json'), JSON.stringify({ pageOrigin, mcpUrl, results, logs }, null, 2));
  for (const r of results) {
    console.log(`${r.ok ? 'PASS' : 'FAIL'} ${r.name} -- ${r.detail.replace(token, '<token>')}`);
    if (!r.ok) failed++;
  }
  if (results.length !== EXPECTED_CHECKS) {
    console.log(`FAIL page -- ${results.length} checks reported, ${EXPECTED_CHECKS} expected`);
    failed++;
  }
  if (failed) for (const l of logs) console.error(`  ${l}`);
} finally {
  await closeChromium();
  pages.close();
}
process.exit(failed ? 1 : 0);
