// The live page of a flash sale (GET /live?sale=<id>) in a real browser: Debian's Chromium
// driven by playwright-core. e2e/live_browser_test.go starts the whole stack, creates the sale
// and the buyer, and runs this file with `node --test`; it reads what it needs from the
// environment:
//
//   LIVE_BASE_URL        the API, such as http://127.0.0.1:41234
//   LIVE_SALE_ID         a flash sale of 10 units, 5 per buyer, at $15.00, starting soon
//   LIVE_STARTS_AT       when it starts (RFC 3339)
//   LIVE_PRODUCT_NAME    its product's name
//   LIVE_BUYER_EMAIL     a registered customer who buys on the page
//   LIVE_BUYER_PASSWORD
//   LIVE_TOKEN_TTL_MS    the lifetime of an access token, shorter than the wait for the start
//   LIVE_SCREENSHOT_DIR  where to save the screenshots
//   CHROMIUM             the browser (default /usr/bin/chromium)
//
// The test walks the sale through its states: scheduled (countdown, Buy disabled), active
// (Buy enabled up to the per-user limit), bought (confirmation announced), sold out (Buy
// disabled, announced). Orders from "outside" the page are placed from Node over fetch, by
// buyers it registers.
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
const startsAt = Date.parse(env('LIVE_STARTS_AT'));
const productName = env('LIVE_PRODUCT_NAME');
const buyerEmail = env('LIVE_BUYER_EMAIL');
const buyerPassword = env('LIVE_BUYER_PASSWORD');
const tokenTTL = Number(env('LIVE_TOKEN_TTL_MS'));
const screenshots = env('LIVE_SCREENSHOT_DIR');
const wait = 30_000; // generous: the stack runs under the race detector
const announceEvery = 3000; // the page's least time between two announcements

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

// waitFor waits until fn(page state) holds, and says what it saw if it never does.
async function expectState(page, what, fn, arg, describe) {
  try {
    await page.waitForFunction(fn, arg, { timeout: wait, polling: 50 });
  } catch {
    assert.fail(`${what}: not so within ${wait} ms; the page shows ${JSON.stringify(await page.evaluate(describe, arg))}`);
  }
}

const textOf = ({ selector }) => document.querySelector(selector)?.textContent.trim() ?? null;

async function expectText(page, selector, want) {
  await expectState(page, `${selector} has text ${JSON.stringify(want)}`,
    ({ selector, want }) => document.querySelector(selector)?.textContent.trim() === want, { selector, want }, textOf);
}

async function expectTextMatching(page, selector, pattern) {
  await expectState(page, `${selector} matches ${pattern}`,
    ({ selector, source }) => new RegExp(source).test(document.querySelector(selector)?.textContent.trim() ?? ''),
    { selector, source: pattern.source }, textOf);
}

async function expectAttribute(page, selector, name, want) {
  await expectState(page, `${selector} [${name}] is ${JSON.stringify(want)}`,
    ({ selector, name, want }) => document.querySelector(selector)?.getAttribute(name) === want,
    { selector, name, want }, ({ selector, name }) => document.querySelector(selector)?.getAttribute(name) ?? null);
}

async function expectDisabled(page, selector, want) {
  await expectState(page, `${selector} is ${want ? 'disabled' : 'enabled'}`,
    ({ selector, want }) => document.querySelector(selector)?.disabled === want,
    { selector, want }, ({ selector }) => ({ disabled: document.querySelector(selector)?.disabled, hint: document.querySelector('#buy-hint')?.textContent }));
}

const countdownSeconds = (text) => {
  const [, clock] = text.match(/(\d+(?::\d\d)+)$/) ?? [];
  return clock ? clock.split(':').reduce((s, part) => s * 60 + Number(part), 0) : NaN;
};

test('the live page walks a sale from scheduled to sold out', async (t) => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  t.after(() => browser.close());
  const problems = []; // script errors and console errors (a CSP violation or an HTTP 401 is one)
  const watch = (page, name) => {
    page.on('pageerror', (e) => problems.push(`${name}: page error: ${e.message}`));
    page.on('console', (m) => {
      // The browser's own reports of what it could not reach while offline are no fault.
      const offline = /WebSocket connection to .* failed|net::ERR_INTERNET_DISCONNECTED/.test(m.text());
      if (m.type() === 'error' && !offline) problems.push(`${name}: console: ${m.text()}`);
    });
  };
  const context = await browser.newContext({ viewport: { width: 900, height: 1100 }, locale: 'en-US' });
  const page = await context.newPage();
  watch(page, 'page');

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

  const inits = []; // the connection_init payloads the page sends, with when
  const completes = []; // the ids of operations the server completed
  page.on('websocket', (ws) => {
    ws.on('framesent', ({ payload }) => {
      const message = JSON.parse(payload);
      if (message.type === 'connection_init') inits.push({ at: Date.now(), url: ws.url(), payload: message.payload });
    });
    ws.on('framereceived', ({ payload }) => {
      const message = JSON.parse(payload);
      if (message.type === 'complete') completes.push(message.id);
    });
  });
  const refreshes = []; // the refreshToken mutations the page sends
  page.on('request', (request) => {
    if (request.method() === 'POST' && /refreshToken\(/.test(request.postData() ?? '')) refreshes.push(Date.now());
  });

  // A second visitor behind a proxy that blocks websockets: the page must poll instead.
  const blocked = await context.newPage();
  watch(blocked, 'blocked');
  await blocked.addInitScript(() => {
    window.WebSocket = class {
      static OPEN = 1;
      constructor() {
        this.readyState = 3;
        setTimeout(() => this.onclose?.({ code: 1006, reason: '' }), 10);
      }
      send() {}
      close() {}
    };
  });

  await step('scheduled: a countdown, and Buy disabled even once signed in', async () => {
    assert.ok(Date.now() < startsAt - 5000, 'the sale starts too soon for this step: the browser was slow to start');
    const response = await page.goto(`${base}/live?sale=${encodeURIComponent(saleId)}`);
    assert.equal(response.status(), 200);
    await expectText(page, '#product-name', productName);
    await expectText(page, '#sale-price', '$15.00');
    await expectText(page, '#remaining', '10');
    await expectAttribute(page, '#sale-status', 'data-status', 'SCHEDULED');
    await expectAttribute(page, '#connection', 'data-state', 'live');
    await expectTextMatching(page, '#countdown', /^Starts in \d+:\d\d$/);
    const first = countdownSeconds(await page.textContent('#countdown'));
    const left = (startsAt - Date.now()) / 1000;
    assert.ok(Math.abs(first - left) <= 3, `countdown says ${first}s, the sale starts in ${left.toFixed(1)}s`);
    await page.waitForTimeout(1100);
    const second = countdownSeconds(await page.textContent('#countdown'));
    assert.ok(second < first, `the countdown did not move: ${first}s, then ${second}s`);
    assert.deepEqual(inits[0].payload, {}, 'an anonymous visitor sends no token');

    await page.fill('#email', buyerEmail);
    await page.fill('#password', buyerPassword);
    await page.click('#login');
    await expectText(page, '#account-email', buyerEmail);
    await expectAttribute(page, '#connection', 'data-state', 'live');
    assert.match(inits.at(-1).payload.Authorization ?? '', /^Bearer \S+$/, 'the socket reconnects with the token');
    await expectDisabled(page, '#buy', true);
    await expectText(page, '#buy-hint', 'Buying opens when the sale starts.');
    await page.screenshot({ path: join(screenshots, 'live-scheduled.png'), fullPage: true });

    await blocked.goto(`${base}/live?sale=${encodeURIComponent(saleId)}`);
    await expectAttribute(blocked, '#connection', 'data-state', 'polling');
    await expectText(blocked, '#remaining', '10');
  });

  await step('the sign-in outlives its access token: the page refreshes it', async () => {
    // The access token expires before the sale starts; the page renews it before it does.
    const deadline = Date.now() + tokenTTL + wait;
    while (refreshes.length === 0 && Date.now() < deadline) await page.waitForTimeout(200);
    assert.ok(refreshes.length > 0, `no refreshToken mutation within the token's lifetime (${tokenTTL} ms)`);
    await expectAttribute(page, '#connection', 'data-state', 'live');
    await expectText(page, '#account-email', buyerEmail);
  });

  await step('active: Buy opens at the start, with quantities up to the per-user limit', async () => {
    await expectAttribute(page, '#sale-status', 'data-status', 'ACTIVE');
    await expectDisabled(page, '#buy', false);
    await expectTextMatching(page, '#countdown', /^On now · ends in \d+:\d\d(:\d\d)?$/);
    const options = await page.$$eval('#buy-quantity option', (os) => os.map((o) => o.value));
    assert.deepEqual(options, ['1', '2', '3', '4', '5']);
    await expectText(page, '#announcer', 'The sale is on: 10 of 10 left.');
  });

  await step('bought: the order is placed, confirmed and announced, then paid', async () => {
    await page.selectOption('#buy-quantity', '2');
    await expectText(page, '#buy', 'Buy 2 for $30.00');
    await page.click('#buy');
    // Placed, then paid: the payment may come back before the order's answer, so the first
    // words may be the last ones.
    await expectTextMatching(page, '#confirmation', /^Order placed: 2 × .+ for \$30\.00\. /);
    assert.equal(await page.getAttribute('#confirmation', 'aria-live'), 'assertive');
    await page.waitForSelector('#orders li[data-order-id]', { timeout: wait });
    const orderId = await page.getAttribute('#orders li[data-order-id]', 'data-order-id');
    assert.match(orderId, /^ord_\d+$/);
    await expectAttribute(page, `#orders li[data-order-id="${orderId}"]`, 'data-status', 'PAID');
    await expectText(page, '#confirmation', `Order placed: 2 × ${productName} for $30.00. Payment received: it is paid.`);
    await expectText(page, '#remaining', '8');
    const options = await page.$$eval('#buy-quantity option', (os) => os.map((o) => o.value));
    assert.deepEqual(options, ['1', '2', '3'], 'the limit of 5 less the 2 bought');
    assert.equal(await page.isVisible('#error'), false, `an error shows: ${await page.textContent('#error')}`);
  });

  await step('sold out: Buy disabled, told to screen readers no more than every few seconds', async () => {
    await page.evaluate(() => {
      window.announcements = [];
      new MutationObserver(() => window.announcements.push({ at: performance.now(), text: document.querySelector('#announcer').textContent }))
        .observe(document.querySelector('#announcer'), { childList: true, characterData: true, subtree: true });
    });
    await buyOutside(await outsideBuyer(), 5);
    await buyOutside(await outsideBuyer(), 3);
    await expectText(page, '#remaining', '0');
    await expectAttribute(page, '#sale-status', 'data-status', 'SOLD_OUT');
    await expectDisabled(page, '#buy', true);
    await expectText(page, '#buy-hint', 'Sold out.');
    await expectText(page, '#countdown', 'Sold out');
    await expectText(page, '#announcer', 'Sold out: every unit has been taken.');
    const said = await page.evaluate(() => window.announcements);
    for (let i = 1; i < said.length; i++) {
      const gap = said[i].at - said[i - 1].at;
      assert.ok(gap >= announceEvery - 100, `announcements ${gap.toFixed(0)} ms apart: ${JSON.stringify(said)}`);
    }
    assert.ok(completes.length > 0, 'the server completed the stock subscription at the sell-out');
    await page.screenshot({ path: join(screenshots, 'live.png'), fullPage: true });

    await expectText(blocked, '#remaining', '0');
    await expectAttribute(blocked, '#sale-status', 'data-status', 'SOLD_OUT');
    await expectAttribute(blocked, '#connection', 'data-state', 'polling');
  });

  await step('buying after the sell-out says SOLD_OUT', async () => {
    // Buy is disabled; the API's answer is what a stale page would get.
    const token = await outsideBuyer();
    const response = await fetch(`${base}/query`, {
      method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: 'mutation($in: PlaceFlashSaleOrderInput!) { placeFlashSaleOrder(input: $in) { id } }',
        variables: { in: { flashSaleId: saleId, quantity: 1, idempotencyKey: randomUUID() } } }),
    });
    const body = await response.json();
    assert.equal(body.errors?.[0]?.extensions?.code, 'SOLD_OUT');
  });

  await step('back online, the page reconnects at once', async () => {
    // A visitor not signed in: no token renewal reconnects its socket meanwhile.
    const visitor = await context.newPage();
    watch(visitor, 'visitor');
    const opened = []; // when the visitor's page sends connection_init
    visitor.on('websocket', (ws) => ws.on('framesent', ({ payload }) => {
      if (JSON.parse(payload).type === 'connection_init') opened.push(Date.now());
    }));
    await visitor.goto(`${base}/live?sale=${encodeURIComponent(saleId)}`);
    await expectAttribute(visitor, '#connection', 'data-state', 'live');
    await context.setOffline(true);
    await expectAttribute(visitor, '#connection', 'data-state', 'offline');
    await visitor.waitForTimeout(5000);
    const online = Date.now();
    await context.setOffline(false);
    await expectAttribute(visitor, '#connection', 'data-state', 'live');
    const back = opened.find((at) => at >= online);
    assert.ok(back, `no connection_init after the network came back (sent at ${opened.map((at) => at - online)} ms)`);
    assert.ok(back - online < 1500, `the socket came back ${back - online} ms after the network, not at once`);
    await expectAttribute(page, '#connection', 'data-state', 'live');
    await visitor.close();
  });

  await step('without a sale it lists the sales', async () => {
    const list = await context.newPage();
    watch(list, 'list');
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
