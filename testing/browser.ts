/**
 * A real headless Chromium (Debian's `chromium`, driven by playwright-core) for tests of pages the gateway serves.
 * Missing browser: skipped with the reason printed, except under CI=true where it is a failure.
 */
import { existsSync } from 'node:fs';
import type { TestContext } from 'node:test';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM_PATH = process.env.KYCGATE_CHROMIUM ?? '/usr/bin/chromium';

export async function launchBrowser(t: TestContext): Promise<Browser | undefined> {
  if (!existsSync(CHROMIUM_PATH)) {
    const reason = `Chromium is not installed at ${CHROMIUM_PATH} (apt-get install chromium)`;
    if (process.env.CI === 'true') throw new Error(`${reason} (CI=true: a missing browser is a failure)`);
    console.log(`# skipped: ${reason}`);
    t.skip(reason);
    return undefined;
  }
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    // Playwright gives each launch a new empty profile. The machine has no network beyond loopback: keep Chromium from trying to reach Google's services.
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  t.after(async () => {
    await browser.close();
  });
  return browser;
}
