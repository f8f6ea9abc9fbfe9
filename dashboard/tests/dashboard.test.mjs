// Browser tests of the approval dashboard, in headless Chromium from the system (never downloaded).
// Run by `cargo test` (crates/lynx/tests/e2e/browser.rs), which starts Lynx, prepares drafts through
// MCP and passes them in the environment: BASE_URL, APPROVER_KEY, SECOND_APPROVER_KEY, ADMIN_KEY,
// DRAFT_ID (a medium-risk payment), OWN_ID (the admin's own), XSS_ID (a document), BIG_ID (a high-risk
// payment needing two approvals, created after those), WORKFLOW_ID, ARTIFACTS (where screenshots go).

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

const queueIds = async (page) => page.locator('article.draft').evaluateAll((cards) => cards.map((c) => c.dataset.draftId));

test('the queue puts the riskiest first, then the oldest, and filters by type and risk', async () => {
  const { context, page } = await signedIn(env('APPROVER_KEY'));
  await page.goto(`${BASE}/approvals`);
  assert.deepEqual(await queueIds(page), [env('BIG_ID'), env('DRAFT_ID'), env('OWN_ID'), env('XSS_ID'), env('WORKFLOW_ID')]);
  const big = page.locator(`[data-draft-id="${env('BIG_ID')}"]`);
  assert.match(await big.textContent(), /2500\.00 USD to Northwind Supplies/, 'amount and vendor');
  assert.match(await big.textContent(), /0 of 2 approval\(s\)/);
  assert.match(await big.textContent(), /Decide by \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/, 'the deadline');
  assert.match(await page.locator(`[data-draft-id="${env('WORKFLOW_ID')}"]`).textContent(), /Vendor onboarding/, 'a title');

  await page.selectOption('select[name=type]', 'vpm_payment');
  await page.click('form.filters button');
  assert.deepEqual(await queueIds(page), [env('BIG_ID'), env('DRAFT_ID'), env('OWN_ID')], 'payments only');
  await page.selectOption('select[name=risk]', 'high');
  await page.click('form.filters button');
  assert.deepEqual(await queueIds(page), [env('BIG_ID')], 'high-risk payments only');
  await page.goto(`${BASE}/approvals?type=docs&risk=high`);
  assert.deepEqual(await queueIds(page), []);
  assert.match(await page.textContent('.queue'), /Nothing is waiting for approval that matches the filter/);

  await page.goto(`${BASE}/drafts`);
  const row = page.locator(`tr[data-draft-id="${env('BIG_ID')}"]`);
  assert.match(await row.textContent(), /2500\.00 USD/);
  assert.match(await row.textContent(), /Northwind Supplies/);
  assert.match(await page.locator(`tr[data-draft-id="${env('WORKFLOW_ID')}"]`).textContent(), /Vendor onboarding/);
  await context.close();
});

test('after one of two approvals the page says who else must decide and hides the buttons from the first', async () => {
  const first = await signedIn(env('APPROVER_KEY'));
  await first.page.goto(`${BASE}/drafts/${env('BIG_ID')}`);
  await first.page.locator('input[name=notes]').fill('first of two');
  await first.page.click('button:has-text("Approve")');
  await first.page.waitForURL(new RegExp(`/drafts/${env('BIG_ID')}\\?done=approved$`));
  assert.equal((await first.page.textContent('#draft-status')).trim(), 'SUBMITTED');
  assert.equal((await first.page.textContent('#draft-approvals')).trim(), '1 of 2');
  const body = await first.page.textContent('body');
  assert.match(body, /You approved this draft at/);
  assert.match(body, /1 more approval\(s\) needed from a user with role approver, finance_manager, admin, other than agent-001, approver-001/);
  assert.equal(await first.page.locator('button:has-text("Approve")').count(), 0, 'no buttons for an approver who decided');
  assert.equal(await first.page.locator('button:has-text("Reject")').count(), 0);
  await first.page.screenshot({ path: `${ARTIFACTS}/draft-one-of-two.png`, fullPage: true });
  // Nor in the queue.
  await first.page.goto(`${BASE}/approvals`);
  assert.equal(await first.page.locator(`[data-draft-id="${env('BIG_ID')}"] button`).count(), 0);
  await first.context.close();

  // The second approver follows the link a notification carries, signs in, lands on the draft, decides.
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${BASE}/drafts/${env('BIG_ID')}`);
  assert.match(page.url(), /\/login\?next=\/drafts\//, 'signed out: to the sign-in form');
  await page.fill('input[name=api_key]', env('SECOND_APPROVER_KEY'));
  await page.click('button[type=submit]');
  await page.waitForURL(`${BASE}/drafts/${env('BIG_ID')}`);
  await page.click('button:has-text("Approve")');
  await page.waitForURL(new RegExp(`/drafts/${env('BIG_ID')}\\?done=approved$`));
  assert.equal((await page.textContent('#draft-status')).trim(), 'APPROVED');
  assert.match(await page.textContent('body'), /Approval good for execution until/);
  await context.close();
});

test('an admin sees the notification subscriptions and their failing deliveries', async () => {
  const { context, page } = await signedIn(env('ADMIN_KEY'));
  await page.goto(`${BASE}/webhooks`);
  assert.match(await page.textContent('#subscriptions'), /127\.0\.0\.1:\d+\/gone/);
  const deliveries = page.locator('#deliveries');
  await page.waitForFunction(() => document.querySelector('#deliveries')?.textContent.includes('draft.submitted'));
  assert.match(await deliveries.textContent(), /cannot reach the receiver/, 'why it failed');
  await page.screenshot({ path: `${ARTIFACTS}/notifications.png`, fullPage: true });
  await context.close();
  // An approver's role does not manage notifications.
  const approver = await signedIn(env('APPROVER_KEY'));
  const res = await approver.page.goto(`${BASE}/webhooks`);
  assert.equal(res.status(), 403);
  assert.match(await approver.page.textContent('body'), /webhook_manage/);
  await approver.context.close();
});

test('an approver signs in, finds the draft in the queue and approves it', async () => {
  const { context, page } = await signedIn(env('APPROVER_KEY'));
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === 'lynx_session');
  assert.ok(session, 'a session cookie is set');
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, 'Strict');
  assert.match(await page.textContent('body'), /Execution success rate/);
  assert.match(await page.textContent('#audit-anchor'), /Last signed checkpoint\s*\d+ of \d+ rows/, 'the audit anchoring of the tenant');

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
