// Starts Debian's headless Chromium (puppeteer-core; no browser download) with a fresh profile
// and the flags this machine's sandbox-less container needs; both browser tests use it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import puppeteer from 'puppeteer-core';

/**
 * Launches Chromium (`$CHROMIUM`, default /usr/bin/chromium) with a window of `width` x `height`.
 * Returns the browser and `close()`, which closes it and deletes its profile directory.
 */
export async function launchChromium({ width, height }) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'vouch-chromium-'));
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    userDataDir: profile,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      `--window-size=${width},${height}`,
    ],
  });
  const close = async () => {
    await browser.close();
    fs.rmSync(profile, { recursive: true, force: true });
  };
  return { browser, close };
}
