// Browser tests of the approval dashboard, in headless Chromium from the system (never downloaded).
// Run by `cargo test` (crates/lynx/tests/e2e/browser.rs), which starts Lynx, prepares drafts through
// MCP and passes them in the environment: BASE_URL, APPROVER_KEY, ADMIN_KEY, DRAFT_ID, OWN_ID, XSS_ID,
// ARTIFACTS (where screenshots go).

import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { chromium } from 'playwright-core';

const env = (k) => {
  const v = process.env[k];
  assert.ok(v, `${k} must be set`);
  return v;
};
const BASE = env('BASE_URL');
const ARTIFACTS = env('ARTIFACTS');
mkdirSync(ARTIFACTS, { recursive: true });

let browser;
before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
});
after(async () => browser?.close());

async function signedIn(key, viewport = { width: 1280, height: 900 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const dialogs = [];
  page.on('dialog', async (d) => {
    dialogs.push(d.message());
    await d.dismiss();
  });
  await page.goto(`${BASE}/login`);
  await page.fill('input[name=api_key]', key);
  await page.click('button[type=submit]');
  await page.waitForURL(`${BASE}/`);
  return { context, page, dialogs };
}

test('an approver signs in, finds the draft in the queue and approves it', async () => {
  const { context, page } = await signedIn(env('APPROVER_KEY'));
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === 'lynx_session');
  assert.ok(session, 'a session cookie is set');
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, 'Strict');
  assert.match(await page.textContent('body'), /Execution success rate/);

  await page.goto(`${BASE}/approvals`);
  const card = page.locator(`[data-draft-id="${env('DRAFT_ID')}"]`);
  await card.waitFor();
  assert.match(await card.textContent(), /Northwind Supplies/, 'the vendor snapshot is shown');
  assert.match(await card.textContent(), /250\.00/, 'the amount is shown');
  await page.screenshot({ path: `${ARTIFACTS}/approval-queue.png`, fullPage: true });

  await card.locator('input[name=notes]').fill('Checked against invoice INV-1001');
  await card.locator('button:has-text("Approve")').click();
  await page.waitForURL(new RegExp(`/drafts/${env('DRAFT_ID')}\\?done=approved$`));
  assert.equal((await page.textContent('#draft-status')).trim(), 'APPROVED');
  await page.screenshot({ path: `${ARTIFACTS}/draft-approved.png`, fullPage: true });

  const api = await fetch(`${BASE}/api/drafts/${env('DRAFT_ID')}`, { headers: { Authorization: `Bearer ${env('APPROVER_KEY')}` } });
  const draft = await api.json();
  assert.equal(draft.status, 'APPROVED', 'the API agrees');
  assert.equal(draft.approvals[0].notes, 'Checked against invoice INV-1001');
  await context.close();
});

test('the queue is readable on a phone', async () => {
  const { context, page } = await signedIn(env('APPROVER_KEY'), { width: 390, height: 844 });
  await page.goto(`${BASE}/approvals`);
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 400, `no sideways scrolling of the page (width ${width})`);
  await page.screenshot({ path: `${ARTIFACTS}/approval-queue-phone.png`, fullPage: true });
  await context.close();
});

test('a draft title with script and onerror payloads renders inert', async () => {
  const { context, page, dialogs } = await signedIn(env('APPROVER_KEY'));
  await page.goto(`${BASE}/drafts/${env('XSS_ID')}`);
  await page.waitForTimeout(300);
  assert.deepEqual(dialogs, [], 'no script ran');
  assert.equal(await page.locator('script').count(), 0, 'no script element on the page');
  assert.equal(await page.locator('.preview img').count(), 0, 'no image element from the title');
  assert.match(await page.textContent('.preview'), /<script>alert\('xss'\)<\/script>/, 'the payload shows as text');
  await page.screenshot({ path: `${ARTIFACTS}/draft-xss-inert.png`, fullPage: true });
  await context.close();
});

test("the creator cannot approve their own draft in the page", async () => {
  const { context, page } = await signedIn(env('ADMIN_KEY'));
  await page.goto(`${BASE}/drafts/${env('OWN_ID')}`);
  assert.equal(await page.locator('button:has-text("Approve")').count(), 0, 'no approve button for the creator');
  assert.match(await page.textContent('body'), /Maker-checker/);
  // Even a hand-made form post with the session's valid CSRF token is refused by the server. (The
  // page's policy allows no script to fetch, so the post goes through the browser context's own
  // request API, which carries the session cookie.)
  const csrf = await page.inputValue('header input[name=csrf]');
  const res = await context.request.post(`${BASE}/drafts/${env('OWN_ID')}/approve`, { form: { csrf, notes: 'mine' }, maxRedirects: 0 });
  assert.equal(res.status(), 403);
  assert.match(await res.text(), /SELF_APPROVAL/);
  const api = await (await fetch(`${BASE}/api/drafts/${env('OWN_ID')}`, { headers: { Authorization: `Bearer ${env('ADMIN_KEY')}` } })).json();
  assert.equal(api.status, 'SUBMITTED');
  await context.close();
});

test('a state-changing post without the CSRF token is refused', async () => {
  const { context, page } = await signedIn(env('APPROVER_KEY'));
  await page.goto(`${BASE}/approvals`);
  const res = await context.request.post(`${BASE}/drafts/${env('XSS_ID')}/reject`, { form: { reason: 'forged' }, maxRedirects: 0 });
  assert.equal(res.status(), 403);
  assert.match(await res.text(), /CSRF/);
  const wrong = await context.request.post(`${BASE}/drafts/${env('XSS_ID')}/reject`, { form: { reason: 'forged', csrf: 'guessed' }, maxRedirects: 0 });
  assert.equal(wrong.status(), 403, 'a wrong token is refused too');
  const api = await (await fetch(`${BASE}/api/drafts/${env('XSS_ID')}`, { headers: { Authorization: `Bearer ${env('APPROVER_KEY')}` } })).json();
  assert.equal(api.status, 'SUBMITTED', 'nothing changed');
  // Signing out ends the session.
  await page.click('header button:has-text("Sign out")');
  await page.waitForURL(`${BASE}/login`);
  await page.goto(`${BASE}/approvals`);
  assert.ok(page.url().endsWith('/login'), 'signed out');
  await context.close();
});
