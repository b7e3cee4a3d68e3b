// The live stock page (GET /live?sale=<id>) in a real browser: Debian's Chromium driven by
// playwright-core. e2e/live_browser_test.go starts the whole stack, creates the sale and the
// buyer, and runs this file with `node --test`; it reads what it needs from the environment:
//
//   LIVE_BASE_URL        the API, such as http://127.0.0.1:41234
//   LIVE_SALE_ID         an active flash sale of 10 units, 5 per buyer, at $15.00
//   LIVE_PRODUCT_NAME    its product's name
//   LIVE_BUYER_EMAIL     a registered customer who buys on the page
//   LIVE_BUYER_PASSWORD
//   LIVE_SCREENSHOT_DIR  where to save live.png
//   CHROMIUM             the browser (default /usr/bin/chromium)
//
// Orders from "outside" the page are placed from Node over fetch, by buyers it registers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const env = (name) => {
  const value = process.env[name];
  assert.ok(value, `${name} is not set: run this through go test ./e2e/ -run TestLivePageInABrowser`);
  return value;
};
const base = env('LIVE_BASE_URL');
const saleId = env('LIVE_SALE_ID');
const productName = env('LIVE_PRODUCT_NAME');
const buyerEmail = env('LIVE_BUYER_EMAIL');
const buyerPassword = env('LIVE_BUYER_PASSWORD');
const screenshots = env('LIVE_SCREENSHOT_DIR');
const wait = 30_000; // generous: the stack runs under the race detector

// graphql sends one operation from Node, as another shopper's browser would.
async function graphql(query, variables, token) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(`${base}/query`, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
  const body = await response.json();
  assert.equal(body.errors, undefined, `${query.trim().split('\n')[0]}: ${JSON.stringify(body.errors)}`);
  return body.data;
}

async function outsideBuyer() {
  const data = await graphql(`mutation($in: RegisterInput!) { register(input: $in) { accessToken } }`,
    { in: { email: `outside-${randomUUID()}@example.test`, password: 'outside-password', name: 'Outside' } });
  return data.register.accessToken;
}

async function buyOutside(token, orders) {
  for (let i = 0; i < orders; i++) {
    await graphql(`mutation($in: PlaceFlashSaleOrderInput!) { placeFlashSaleOrder(input: $in) { id } }`,
      { in: { flashSaleId: saleId, quantity: 1, idempotencyKey: randomUUID() } }, token);
  }
}

// expectText waits for the element's text to be want, and says what it was if it never is.
async function expectText(page, selector, want) {
  try {
    await page.waitForFunction(({ selector, want }) => document.querySelector(selector)?.textContent.trim() === want,
      { selector, want }, { timeout: wait, polling: 50 });
  } catch {
    const got = await page.evaluate((s) => document.querySelector(s)?.textContent.trim() ?? null, selector);
    assert.fail(`${selector}: got text ${JSON.stringify(got)}, want ${JSON.stringify(want)} within ${wait} ms`);
  }
}

async function expectAttribute(page, selector, name, want) {
  try {
    await page.waitForFunction(({ selector, name, want }) => document.querySelector(selector)?.getAttribute(name) === want,
      { selector, name, want }, { timeout: wait, polling: 50 });
  } catch {
    const got = await page.evaluate(({ selector, name }) => document.querySelector(selector)?.getAttribute(name) ?? null, { selector, name });
    assert.fail(`${selector} [${name}]: got ${JSON.stringify(got)}, want ${JSON.stringify(want)} within ${wait} ms`);
  }
}

test('the live page follows the stock and the buyer\'s order', async (t) => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 900, height: 1000 } });
  const problems = []; // script errors and console errors (a CSP violation is one)
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  // Each step needs the ones before it: after a failure the rest are skipped, not waited out.
  let failed = false;
  const step = (name, fn) => t.test(name, { skip: failed && 'an earlier step failed' }, async () => {
    try {
      await fn();
    } catch (e) {
      failed = true;
      throw e;
    }
  });
  const inits = []; // the connection_init payloads the page sends
  page.on('websocket', (ws) => {
    ws.on('framesent', ({ payload }) => {
      const message = JSON.parse(payload);
      if (message.type === 'connection_init') inits.push({ url: ws.url(), payload: message.payload });
    });
  });

  await step('shows the sale and its remaining count', async () => {
    const response = await page.goto(`${base}/live?sale=${encodeURIComponent(saleId)}`);
    assert.equal(response.status(), 200);
    await expectText(page, '#product-name', productName);
    await expectText(page, '#sale-price', '$15.00');
    await expectText(page, '#remaining', '10');
    await expectText(page, '#quantity', '10');
    await expectAttribute(page, '#sale-status', 'data-status', 'ACTIVE');
    await expectAttribute(page, '#connection', 'data-state', 'live');
    assert.equal(inits.length, 1, 'one websocket');
    assert.match(inits[0].url, /^ws:\/\/.+\/query$/);
    assert.deepEqual(inits[0].payload, {}, 'an anonymous visitor sends no token');
  });

  const outside = await outsideBuyer();
  await step('the count drops as others buy', async () => {
    await buyOutside(outside, 3);
    await expectText(page, '#remaining', '7');
  });

  await step('a visitor signs in, buys, and sees the order paid', async () => {
    await page.fill('#email', buyerEmail);
    await page.fill('#password', buyerPassword);
    await page.click('#login');
    await expectText(page, '#account-email', buyerEmail);
    await expectAttribute(page, '#connection', 'data-state', 'live');
    const init = inits.at(-1).payload;
    assert.match(init.Authorization ?? '', /^Bearer \S+$/, 'the socket reconnects with the token');

    await page.click('#buy');
    await page.waitForSelector('#orders li[data-order-id]', { timeout: wait });
    const orderId = await page.getAttribute('#orders li[data-order-id]', 'data-order-id');
    assert.match(orderId, /^ord_\d+$/);
    await expectAttribute(page, `#orders li[data-order-id="${orderId}"]`, 'data-status', 'PAID');
    await expectText(page, `#orders li[data-order-id="${orderId}"] .status`, 'PAID');
    await expectText(page, '#remaining', '6');
  });

  await step('a sell-out shows, and buying then says SOLD_OUT', async () => {
    await buyOutside(outside, 2); // the outside buyer's limit of 5
    await buyOutside(await outsideBuyer(), 4);
    await expectText(page, '#remaining', '0');
    await expectAttribute(page, '#sale-status', 'data-status', 'SOLD_OUT');
    await page.click('#buy');
    await expectText(page, '#error-code', 'SOLD_OUT');
    assert.equal(await page.isVisible('#error'), true);
    await page.screenshot({ path: join(screenshots, 'live.png'), fullPage: true });
  });

  await step('without a sale it lists the sales', async () => {
    const list = await browser.newPage();
    list.on('pageerror', (e) => problems.push(`page error on the list: ${e.message}`));
    await list.goto(`${base}/live`);
    const link = list.locator('#sales-list a', { hasText: productName });
    await link.waitFor({ timeout: wait });
    assert.equal(await link.getAttribute('href'), `?sale=${encodeURIComponent(saleId)}`);
    await list.close();
  });

  await step('no script errors', () => {
    assert.deepEqual(problems, []);
  });
});
