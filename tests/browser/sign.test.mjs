// The sandbox signing page in headless Chromium: papayd is built from this
// repository and run in sandbox mode; signing sessions are started over REST;
// the browser opens the sign_url (JavaScript off: the page needs none) and
// clicks. Screenshots go to $PAPAYD_BROWSER_ARTIFACTS (default ./artifacts).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { chromium } from 'playwright-core';

const here = import.meta.dirname;
const repo = path.resolve(here, '..', '..');
const artifacts = path.resolve(process.env.PAPAYD_BROWSER_ARTIFACTS || path.join(here, 'artifacts'));
const planID = 4001;

// Debian's chromium package installs the browser at /usr/lib/chromium/chromium
// (/usr/bin/chromium is a shell wrapper around it).
function chromiumPath() {
  const candidates = [process.env.PAPAYD_CHROMIUM, '/usr/lib/chromium/chromium', '/usr/bin/chromium'];
  const found = candidates.find((p) => p && fs.existsSync(p));
  if (!found) throw new Error('Chromium not found: apt-get install chromium (or set PAPAYD_CHROMIUM)');
  return found;
}

let tmp, papayd, exited, base, browser, returns;
const returnHits = [];

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'papayd-browser-'));
  fs.mkdirSync(artifacts, { recursive: true });
  const bin = path.join(tmp, 'papayd');
  execFileSync('go', ['build', '-o', bin, './cmd/papayd'], { cwd: repo, stdio: 'inherit' });
  papayd = spawn(bin, ['-http-addr', '127.0.0.1:0', '-grpc-addr', '127.0.0.1:0', '-admin-addr', '', '-log-format', 'json'], {
    env: { ...process.env, PAPAYD_DATA_DIR: path.join(tmp, 'data'), PAPAYD_SANDBOX_TIME_SCALE: '0.0001' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  exited = new Promise((resolve) => papayd.on('exit', resolve));
  // papayd logs where it listens in its "papayd serving" line.
  base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('papayd did not start in 60 s')), 60_000);
    papayd.on('exit', (code) => reject(new Error(`papayd exited with ${code}`)));
    for (const stream of [papayd.stdout, papayd.stderr]) {
      readline.createInterface({ input: stream }).on('line', (line) => {
        fs.appendFileSync(path.join(tmp, 'papayd.log'), line + '\n');
        let entry;
        try { entry = JSON.parse(line); } catch { return; }
        if (entry.msg === 'papayd serving') {
          clearTimeout(timer);
          resolve(entry.http);
        }
      });
    }
  });
  // The merchant's return page: records that the browser came back.
  returns = http.createServer((req, res) => {
    returnHits.push(req.url);
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.end('<!doctype html><title>Merchant</title><h1>Back at the merchant</h1>');
  });
  await new Promise((resolve) => returns.listen(0, '127.0.0.1', resolve));
  browser = await chromium.launch({ executablePath: chromiumPath(), headless: true });
});

after(async () => {
  await browser?.close();
  returns?.close();
  if (papayd && papayd.exitCode === null) {
    papayd.kill('SIGTERM');
    await exited;
  }
  if (tmp) {
    // papayd's log goes with the screenshots, for a failure's reader.
    const log = path.join(tmp, 'papayd.log');
    if (fs.existsSync(log)) fs.copyFileSync(log, path.join(artifacts, 'papayd.log'));
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

async function rest(method, p, body) {
  const res = await fetch(base + p, {
    method,
    headers: body ? { 'Content-Type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await res.json();
  assert.ok(res.ok, `${method} ${p}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

const presign = (body) => rest('POST', '/v1/agreements:presign', { plan_id: planID, ...body });
const agreement = async (code) => (await rest('GET', `/v1/agreements/out-contract-code/${code}?plan_id=${planID}`)).agreement;

// waitState polls the agreement over REST until it is in state.
async function waitState(code, state) {
  const deadline = Date.now() + 15_000;
  let a;
  while (Date.now() < deadline) {
    a = await agreement(code);
    if (a.state === state) return a;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`agreement ${code} is ${a?.state}, want ${state}`);
}

// newPage opens a page without JavaScript and records every request it makes.
async function newPage() {
  const context = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 480, height: 900 } });
  const page = await context.newPage();
  page.requests = [];
  page.on('request', (r) => page.requests.push(r.url()));
  return page;
}

// onlyOwnRequests asserts that the page loaded nothing but papayd's own pages
// (and the merchant's return page, when it follows return_url).
function onlyOwnRequests(page, ...others) {
  for (const u of page.requests) {
    assert.ok(u.startsWith(base + '/') || others.some((o) => u.startsWith(o)), `the page requested ${u}`);
  }
}

async function shot(page, name, what) {
  const file = path.join(artifacts, name);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`screenshot: ${file} (${what})`);
}

test('Agree on the sign_url signs the agreement (SIGNED over REST)', async () => {
  const res = await presign({ channel: 'SIGNING_CHANNEL_JSAPI', openid: 'oBrowserAgree', user_display_name: 'Chan Tai Man' });
  const code = res.agreement.out_contract_code;
  assert.ok(res.sign_url.startsWith(base + '/sandbox/sign?os_session_id='), res.sign_url);
  const page = await newPage();
  const resp = await page.goto(res.sign_url);
  assert.equal(resp.status(), 200);
  assert.equal(await page.textContent('#plan'), `Plan ${planID}`);
  assert.match(await page.textContent('#user'), /Chan Tai Man/);
  assert.equal(await page.textContent('#code'), code);
  assert.equal(await page.textContent('#channel'), 'JSAPI');
  await shot(page, '01-agree-page.png', 'a JSAPI session before Agree: plan, merchant, user, buttons');

  await Promise.all([page.waitForURL(`${base}/sandbox/sign`), page.click('#agree')]);
  assert.match(await page.textContent('#outcome'), /The contract is signed/);
  assert.equal(await page.locator('#error, #agree, #decline').count(), 0);
  const contractID = (await page.textContent('#contract')).trim();
  await shot(page, '02-signed.png', 'the outcome after Agree: signed, with WeChat\'s contract id');

  const a = await waitState(code, 'AGREEMENT_STATE_SIGNED');
  assert.equal(a.contract_id, contractID);
  assert.equal(a.openid, 'oBrowserAgree');
  onlyOwnRequests(page);
  await page.context().close();
});

test('Agree on an H5 page follows the merchant\'s return_url', async () => {
  const back = `http://127.0.0.1:${returns.address().port}/back?order=42`;
  const res = await presign({ channel: 'SIGNING_CHANNEL_H5', user_client_ip: '198.51.100.7', return_url: back });
  const code = res.agreement.out_contract_code;
  const page = await newPage();
  await page.goto(res.sign_url);
  await page.fill('#openid', 'oBrowserH5');
  await Promise.all([page.waitForURL(`${base}/sandbox/sign`), page.click('#agree')]);
  assert.match(await page.textContent('#outcome'), /The contract is signed/);
  assert.match(await page.textContent('#return'), /127\.0\.0\.1/);
  await page.waitForURL(back, { timeout: 15_000 }); // the meta refresh, after 3 s
  assert.ok(returnHits.includes('/back?order=42'), `return page hits ${returnHits}`);
  const a = await waitState(code, 'AGREEMENT_STATE_SIGNED');
  assert.equal(a.openid, 'oBrowserH5');
  onlyOwnRequests(page, back);
  await page.context().close();
});

test('Decline closes the session; the agreement stays PENDING', async () => {
  const res = await presign({ channel: 'SIGNING_CHANNEL_JSAPI', openid: 'oBrowserDecline', user_display_name: 'Wong Siu Ming' });
  const code = res.agreement.out_contract_code;
  const sessionID = new URL(res.sign_url).searchParams.get('os_session_id');
  const page = await newPage();
  await page.goto(res.sign_url);
  await Promise.all([page.waitForURL(`${base}/sandbox/sign`), page.click('#decline')]);
  assert.match(await page.textContent('#outcome'), /You declined/);
  assert.equal(await page.locator('#error, #agree, #decline').count(), 0);
  await shot(page, '03-declined.png', 'the outcome after Decline: no contract');

  const session = await rest('GET', `/sandbox/v1/sessions/${sessionID}`);
  assert.equal(session.state, 'DECLINED');
  // WeChat sends no notification of a refusal: papayd's agreement stays
  // PENDING until its session expires.
  await new Promise((r) => setTimeout(r, 300));
  assert.equal((await agreement(code)).state, 'AGREEMENT_STATE_PENDING');
  const again = await page.goto(res.sign_url);
  assert.equal(again.status(), 200);
  assert.match(await page.textContent('#error'), /was declined/);
  assert.equal(await page.locator('#agree, #decline').count(), 0);
  onlyOwnRequests(page);
  await page.context().close();
});

test('An expired session shows so, without buttons', async () => {
  const expire = new Date(Date.now() + 4_000);
  const res = await presign({
    channel: 'SIGNING_CHANNEL_JSAPI', openid: 'oBrowserLate',
    session_expire_time: expire.toISOString().replace(/\.\d+Z$/, 'Z'),
  });
  const page = await newPage();
  const open = await page.goto(res.sign_url);
  assert.equal(open.status(), 200);
  await new Promise((r) => setTimeout(r, Math.max(0, expire - Date.now()) + 1_100));
  const resp = await page.goto(res.sign_url);
  assert.equal(resp.status(), 410);
  assert.equal(await page.textContent('h1'), 'Session expired');
  assert.equal(await page.textContent('#state'), 'EXPIRED');
  assert.equal(await page.locator('#agree, #decline').count(), 0);
  await shot(page, '04-expired.png', 'an expired session: the message, no buttons');
  onlyOwnRequests(page);
  await page.context().close();
});

test('A WEB show_code_url shows a QR code of itself', async () => {
  const res = await presign({ channel: 'SIGNING_CHANNEL_WEB', user_display_name: 'Lee Ka Yan' });
  assert.ok(res.show_code_url.startsWith(base + '/sandbox/sign?os_session_id='), res.show_code_url);
  const page = await newPage();
  await page.goto(res.show_code_url);
  const qr = page.locator('#qrcode');
  assert.match(await qr.getAttribute('src'), /^data:image\/png;base64,/);
  assert.equal(await qr.evaluate((img) => img.complete && img.naturalWidth), 256);
  assert.match(await page.textContent('.qr p'), new RegExp(res.show_code_url.replace(/[.?]/g, '\\$&')));
  assert.equal(await page.textContent('#channel'), 'WEB');
  await shot(page, '05-web-qr.png', 'a WEB session: the QR code of its show_code_url, and the buttons');
  onlyOwnRequests(page);
  await page.context().close();
});
