// Drives the MCP Inspector's web UI (npm @modelcontextprotocol/inspector, its prebuilt
// clients/web/dist, served by its own launcher from run.sh) in Debian's headless Chromium
// (puppeteer-core; no browser download) against vouch-mcp --dev, the way a person would:
// add a Streamable HTTP server by hand, give it the dev bearer token as a custom Authorization
// header, connect, list the tools, call whoami, and read the result off the page.
//
//   node inspector.mjs INSPECTOR_URL MCP_URL TOKEN OUT_DIR
//
// INSPECTOR_URL is the UI's own loopback origin with its API token (the launcher's banner URL).
// Only loopback requests leave Chromium; any other (the UI's Google Fonts stylesheet) is aborted
// and listed. Every step waits at most STEP_MS. Saves OUT_DIR/inspector.png (the page at the end,
// pass or fail) and OUT_DIR/inspector.json, prints `PASS|FAIL name -- detail` per check, and exits
// non-zero on any failure. Chromium is always closed.
import fs from 'node:fs';
import path from 'node:path';
import { launchChromium } from './chromium.mjs';

const [inspectorUrl, mcpUrl, token, outDir] = process.argv.slice(2);
if (!inspectorUrl || !mcpUrl || !token || !outDir) {
  console.log('FAIL arguments -- usage: node inspector.mjs INSPECTOR_URL MCP_URL TOKEN OUT_DIR');
  process.exit(2);
}
fs.mkdirSync(outDir, { recursive: true });
const STEP_MS = 15_000;
const SERVER_ID = 'vouch-dev';
/** The checks below, in order; a check not reached is reported as a failure. */
const CHECKS = ['ui-loaded', 'server-added', 'auth-header', 'connected', 'tools-listed', 'whoami-called', 'whoami-identity'];

const inspectorOrigin = new URL(inspectorUrl).origin;
const mcpOrigin = new URL(mcpUrl).origin;
const results = [];
const logs = [];
const blocked = [];
const traffic = { browserToMcp: 0, browserToInspectorApi: 0 };
const redact = (s) => String(s).split(token).join('<token>');
const check = (name, ok, detail) => {
  results.push({ name, ok, detail: redact(detail) });
  console.log(`${ok ? 'PASS' : 'FAIL'} ${name} -- ${redact(detail)}`);
  return ok;
};

const { browser, close: closeChromium } = await launchChromium({ width: 1280, height: 900 });
let page;
try {
  page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 900 });
  page.setDefaultTimeout(STEP_MS);
  page.on('console', (m) => logs.push(`console.${m.type()}: ${redact(m.text())}`));
  page.on('pageerror', (e) => logs.push(`pageerror: ${redact(e.message)}`));
  page.on('requestfailed', (r) => logs.push(`requestfailed: ${r.method()} ${redact(r.url())} ${r.failure()?.errorText}`));
  await page.setRequestInterception(true);
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.protocol === 'data:' || u.protocol === 'blob:') return r.continue();
    if (u.hostname === '127.0.0.1' || u.hostname === 'localhost') {
      if (u.origin === mcpOrigin) traffic.browserToMcp++;
      if (u.origin === inspectorOrigin && u.pathname.startsWith('/api/')) traffic.browserToInspectorApi++;
      return r.continue();
    }
    blocked.push(`${r.method()} ${u.origin}${u.pathname}`);
    return r.abort('blockedbyclient');
  });

  await steps();
} catch (e) {
  logs.push(`driver: ${redact(e.stack || e)}`);
} finally {
  if (page) {
    await page.screenshot({ path: path.join(outDir, 'inspector.png'), fullPage: true }).catch((e) => logs.push(`screenshot: ${e.message}`));
    const text = await page.evaluate(() => document.body?.innerText ?? '').catch(() => '');
    fs.writeFileSync(path.join(outDir, 'inspector.json'), JSON.stringify({ inspectorOrigin, mcpUrl, results, traffic, blocked, logs, text: redact(text) }, null, 2));
  }
  await closeChromium();
}
let failed = results.filter((r) => !r.ok).length;
for (const name of CHECKS.slice(results.length)) {
  console.log(`FAIL ${name} -- not reached (an earlier step failed)`);
  failed++;
}
if (failed) for (const l of logs.slice(-40)) console.error(`  ${l}`);
if (blocked.length) console.error(`  blocked non-loopback requests: ${[...new Set(blocked)].join(', ')}`);
process.exit(failed ? 1 : 0);

// ---------------------------------------------------------------------------------------------

/** The element with this accessible name (and role), as a bounded locator that names itself in errors. */
function aria(name, role) {
  const sel = `::-p-aria([name=${JSON.stringify(name)}]${role ? `[role=${JSON.stringify(role)}]` : ''})`;
  const loc = page.locator(sel).setTimeout(STEP_MS);
  const what = `${role || 'element'} "${name}"`;
  return {
    // Scrolled into view first: a control at the bottom of a modal's scroll area can be inside
    // the viewport yet under the modal's footer.
    click: () => into(loc).then(() => loc.click()).catch((e) => { throw new Error(`click ${what}: ${e.message}`); }),
    // Typed as one text insertion (CDP Input.insertText, like a paste): the inputs are React-
    // controlled, and setting .value from script (Locator.fill does that past 100 characters, and
    // the bearer token is longer) leaves React's state, and so what the UI saves, empty.
    fill: (v) => into(loc).then(() => loc.click()).then(async () => {
      await page.keyboard.down('Control'); await page.keyboard.press('KeyA'); await page.keyboard.up('Control');
      await page.keyboard.press('Backspace');
      await page.keyboard.sendCharacter(v);
    }).catch((e) => { throw new Error(`fill ${what}: ${e.message}`); }),
  };
}
async function into(loc) {
  const h = await loc.waitHandle();
  await h.evaluate((el) => el.scrollIntoView({ block: 'center' }));
  await h.dispose();
}
/** Waits (bounded) until fn(...args) in the page is truthy; returns its value, or null. */
async function until(fn, ...args) {
  try {
    const h = await page.waitForFunction(fn, { timeout: STEP_MS, polling: 100 }, ...args);
    return await h.jsonValue();
  } catch (e) {
    logs.push(`wait: ${e.message}`);
    return null;
  }
}

async function steps() {
  await page.goto(inspectorUrl, { waitUntil: 'load', timeout: 20_000 });
  const version = await until(() => {
    const t = document.body?.innerText ?? '';
    return /Add Servers/.test(t) && (t.match(/v\d+\.\d+\.\d+/) || [''])[0];
  });
  if (!check('ui-loaded', !!version, version ? `the Inspector web UI ${version} at ${inspectorOrigin}` : 'no "Add Servers" control')) return;

  // Add the server by hand: Servers > Add Servers > + Add manually.
  await aria('Add Servers', 'button').click();
  await aria('+ Add manually', 'menuitem').click();
  await aria('Server ID', 'textbox').fill(SERVER_ID);
  await aria('Transport').click();
  await aria('streamable-http', 'option').click();
  await aria('URL', 'textbox').fill(mcpUrl);
  await aria('Add', 'button').click();
  const added = await until((id) => !document.querySelector('[role=dialog]') &&
    !!document.querySelector(`[role=switch][aria-label=${JSON.stringify(`Connect or disconnect "${id}"`)}]`), SERVER_ID);
  if (!check('server-added', !!added, added ? `server "${SERVER_ID}" (streamable-http, ${mcpUrl}) on the Servers list` : `no "${SERVER_ID}" card after Add`)) return;

  // Its Settings > Custom Headers > + Add Header: Authorization: Bearer <the dev token>.
  await (await cardButton('Settings')).click();
  await aria('Custom Headers', 'button').click();
  await aria('+ Add Header', 'button').click();
  await aria('header name, row 1', 'textbox').fill('Authorization');
  await aria('header value, Authorization, row 1').fill(`Bearer ${token}`);
  await aria('Close', 'button').click();
  await until(() => !document.querySelector('[role=dialog]'));
  // The UI saves settings through its API after the dialog closes; a dialog opened before the
  // save lands shows the old settings.
  await page.waitForNetworkIdle({ idleTime: 500, timeout: STEP_MS }).catch((e) => logs.push(`network idle: ${e.message}`));
  // Read it back from a freshly opened Settings dialog: what the UI kept, not what was typed.
  await (await cardButton('Settings')).click();
  if (!(await until(() => document.querySelector('[role=dialog] input[aria-label="header value, Authorization, row 1"]')))) {
    await aria('Custom Headers', 'button').click();
  }
  const header = await until((t) => {
    const name = document.querySelector('[role=dialog] input[aria-label="header name, Authorization, row 1"]');
    const value = document.querySelector('[role=dialog] input[aria-label="header value, Authorization, row 1"]');
    return name?.value === 'Authorization' && value?.value === `Bearer ${t}`;
  }, token);
  if (!check('auth-header', !!header, header ? 'the reopened Settings dialog holds the custom header "Authorization: Bearer <the dev token>"' : 'the reopened Settings dialog does not hold the header')) return;
  await aria('Close', 'button').click();
  await until(() => !document.querySelector('[role=dialog]'));

  // Connect: the server card's switch.
  await aria(`Connect or disconnect "${SERVER_ID}"`, 'switch').click();
  const connected = await until((id, url) => {
    // The card: the switch's nearest ancestor that also shows the server's URL.
    let card = document.querySelector(`[role=switch][aria-label=${JSON.stringify(`Connect or disconnect "${id}"`)}]`);
    while (card && !card.innerText.includes(url)) card = card.parentElement;
    const status = card?.innerText.match(/\b(Connected|Failed)\b/)?.[1];
    const era = card?.innerText.match(/\bMCP (\d{4}-\d\d-\d\d)\b/)?.[1];
    return status && (status === 'Failed' || era) && `${status}${era ? `, protocol ${era}` : ''}`;
  }, SERVER_ID, mcpUrl);
  if (!check('connected', /^Connected/.test(connected || ''), connected ? `"${SERVER_ID}" ${connected}` : `"${SERVER_ID}" never showed Connected or Failed`)) return;

  // The Tools tab lists what tools/list returned: one button per tool, "<title> <name>".
  await segment('Tools');
  const tools = await until(() => {
    const heading = [...document.querySelectorAll('h1,h2,h3,h4')].map((h) => h.innerText.trim()).find((t) => /^Tools \(\d+\)$/.test(t));
    const names = [...document.querySelectorAll('main button')].map((b) => b.innerText.replace(/\s+/g, ' ').trim())
      .filter((t) => /(^| )(whoami|sensitive-action)$/.test(t));
    return heading && names.length >= 2 && `${heading}: ${names.join('; ')}`;
  });
  if (!check('tools-listed', !!tools && /whoami/.test(tools) && /sensitive-action/.test(tools), tools || 'no whoami and sensitive-action on the Tools tab')) return;

  // Pick whoami, run it (it takes no arguments), and read the result panel and the message log.
  await aria('Who am I whoami', 'button').click();
  await aria('Execute Tool', 'button').click();
  const called = await until(() => {
    // The newest entry of the Messages log (newest first): method, tool and status.
    const entry = [...document.querySelectorAll('body *')].find((el) => el.children.length === 0 && el.innerText?.trim() === 'TOOLS/CALL');
    let box = entry;
    while (box && !/\b(OK|ERROR|Error)\b/.test(box.innerText)) box = box.parentElement;
    const results = [...document.querySelectorAll('main h1,main h2,main h3,main h4')].some((h) => h.innerText.trim() === 'Results');
    return results && box && box.innerText.replace(/\s+/g, ' ').trim();
  });
  if (!check('whoami-called', !!called && /TOOLS\/CALL whoami/.test(called) && /\bOK\b/.test(called), called ? `Messages log: ${called}` : 'no Results panel and no tools/call in the Messages log')) return;

  const result = await until(() => {
    // The first JSON editor (an Ace editor) under the Results heading holds the tool's text content.
    const heading = [...document.querySelectorAll('main h1,main h2,main h3,main h4')].find((h) => h.innerText.trim() === 'Results');
    let panel = heading;
    while (panel && !panel.querySelector('.ace_text-layer')) panel = panel.parentElement;
    const lines = [...(panel?.querySelector('.ace_text-layer')?.querySelectorAll('.ace_line') ?? [])].map((l) => l.textContent);
    return lines.length ? lines.join('\n') : null;
  });
  let identity = null;
  try { identity = JSON.parse(result); } catch { /* reported below */ }
  const ok = identity?.sub === 'dev-user' && identity?.email === 'dev@example.com' && identity?.hardware_verified === true;
  check('whoami-identity', ok, identity ? `Results: ${JSON.stringify(identity)}; Chromium sent ${traffic.browserToMcp} requests to vouch-mcp and ${traffic.browserToInspectorApi} to the Inspector's /api (its proxy makes the MCP calls)` : `Results panel did not hold JSON: ${String(result).slice(0, 200)}`);
}

/** Picks a segmented-control option (a visually hidden radio input) by clicking its label. */
async function segment(name) {
  const h = await page.locator(`::-p-aria([name=${JSON.stringify(name)}][role="radio"])`).setTimeout(STEP_MS).waitHandle()
    .catch((e) => { throw new Error(`radio "${name}": ${e.message}`); });
  const label = await h.evaluateHandle((el) => (el.id && document.querySelector(`label[for="${CSS.escape(el.id)}"]`)) || el.closest('label'));
  if (!label.asElement()) throw new Error(`radio "${name}" has no label to click`);
  // A click that lands while the app is still re-rendering (just after a connect) can be lost:
  // retry, bounded, until the radio reads checked.
  for (let i = 0; i < 5; i++) {
    await label.asElement().click();
    if (await page.waitForFunction((el) => el.checked, { timeout: 3000, polling: 100 }, h).then(() => true, () => false)) return;
  }
  throw new Error(`radio "${name}" never became checked`);
}

/** A button with this exact text in the server's own card (the card holding its switch). */
function cardButton(text) {
  return page.waitForFunction((id, text) => {
    let el = document.querySelector(`[role=switch][aria-label=${JSON.stringify(`Connect or disconnect "${id}"`)}]`);
    for (; el; el = el.parentElement) {
      const bs = [...el.querySelectorAll('button')].filter((b) => b.innerText.trim() === text);
      if (bs.length === 1) return bs[0];
      if (bs.length > 1) return null;
    }
    return null;
  }, { timeout: STEP_MS, polling: 100 }, SERVER_ID, text).then((h) => h.asElement());
}
