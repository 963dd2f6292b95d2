import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';

/** Debian's Chromium (installed by .ci/run), or the one BATON_CHROMIUM names. */
export const chromiumPath = process.env.BATON_CHROMIUM ?? '/usr/bin/chromium';
/** Whether the browser tests can run here; outside CI they are skipped with a warning otherwise. */
export const haveChromium = existsSync(chromiumPath);
if (!haveChromium && process.env.CI === undefined)
  console.warn(`browser tests skipped: no Chromium at ${chromiumPath} (apt-get install chromium)`);

/** Where screenshots are kept as test artifacts (not committed). */
export const browserArtifacts = join(process.cwd(), 'test-artifacts', 'browser');

/** Starts headless Chromium as every browser test runs it: no sandbox, GPU, QUIC or background traffic. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath,
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
}
