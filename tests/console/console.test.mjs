#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// console.test.mjs - browser tests of otagw's web console. Starts the real
// daemon (OTAGW_BIN, default build/otagw) on free loopback ports with a temp
// data dir, drives Debian's chromium headless through playwright-core (no
// browser download; CHROMIUM overrides /usr/bin/chromium), plays TCP devices
// (simdev.mjs) and prints TAP: "1..N", then "ok K - name" / "not ok K - name"
// with the error as "# " lines. Exit status 1 on any failure. Every test
// saves a screenshot under build/console/. Node 18 or later.
//
// The tests run in order and build on each other (one daemon, one task).
//   node tests/console/console.test.mjs            (from the repository root)
import fs from 'node:fs';
import os from 'node:os';
import net from 'node:net';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { SimDevice, sleep, sha256 } from './simdev.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const BIN = path.resolve(process.env.OTAGW_BIN || path.join(ROOT, 'build/otagw'));
const WWW = path.join(ROOT, 'rootfs/share/otagw/www');
const SHOTS = path.join(ROOT, 'build/console');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const TOKEN = 'console-secret-7d41';
const WWW_MAX = 150 * 1024;
const TEST_TIMEOUT = 60000;   // ms per test
const BUDGET = 270000;        // ms for the whole run (tests/run.sh kills at 300 s)
const WAIT = 10000;           // ms for one UI state to appear
const PRODUCT = 'sensor';
const FW_ID = 'fw-sensor-2';
const IMAGE = crypto.randomBytes(3 * 1024 * 1024 + 12345);
const IMAGE_SHA = sha256(IMAGE);

// ---- TAP ----------------------------------------------------------------

const tests = [];
const test = (name, fn) => tests.push({ name, fn });
const say = (s) => process.stdout.write(s + '\n');
const comment = (text) => String(text).split('\n').forEach((l) => say('# ' + l));

function check(cond, what) {
	if (!cond) throw new Error('assertion failed: ' + what);
}

function eq(got, want, what) {
	if (got !== want) throw new Error(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
}

// Polls fn() until it returns a truthy value; fails naming what and the last value.
async function until(fn, what, timeout = WAIT) {
	const end = Date.now() + timeout;
	let last;
	for (;;) {
		try {
			last = await fn();
			if (last) return last;
		} catch (e) {
			last = 'error: ' + e.message;
		}
		if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
		await sleep(50);
	}
}

// ---- the daemon -----------------------------------------------------------

function freePort() {
	return new Promise((resolve, reject) => {
		const s = net.createServer();
		s.unref();
		s.on('error', reject);
		s.listen(0, '127.0.0.1', () => {
			const { port } = s.address();
			s.close(() => resolve(port));
		});
	});
}

class Daemon {
	constructor(name, token) {
		this.name = name;
		this.token = token;
		this.log = '';
		this.proc = null;
	}

	// The first start makes the data dir, ports and config; later ones (a
	// restart) reuse them.
	async start() {
		if (!this.dir) await this.configure();
		this.proc = spawn(BIN, ['-c', this.conf, '-d', path.join(this.dir, 'data')], { stdio: ['ignore', 'pipe', 'pipe'] });
		const keep = (d) => {
			this.log = (this.log + d).slice(-20000);
		};
		this.proc.stdout.on('data', keep);
		this.proc.stderr.on('data', keep);
		this.exited = new Promise((r) => this.proc.on('exit', (code, sig) => r(code ?? sig)));
		this.proc.on('error', (e) => keep(`spawn ${BIN}: ${e.message}\n`));
		await until(async () => (await this.req('GET', 'health')).status === 200,
			`${BIN} to answer GET /api/health on port ${this.port}`, 10000);
	}

	async configure() {
		this.dir = fs.mkdtempSync(path.join(os.tmpdir(), `otagw-console-${this.name}-`));
		this.port = await freePort();
		this.tcpPort = await freePort();
		this.base = `http://127.0.0.1:${this.port}`;
		this.conf = path.join(this.dir, 'otagw.conf');
		fs.writeFileSync(this.conf, [
			'[gateway]', 'log_level = info', 'syslog = false', '',
			'[http]', 'bind = 127.0.0.1', `port = ${this.port}`, `www_dir = ${WWW}`,
			this.token ? `api_token = ${this.token}` : '', '',
			'[tcp]', 'bind = 127.0.0.1', `port = ${this.tcpPort}`, 'codec = jsonline', 'max_chunk = 65536', '',
			'[cache]', 'max_bytes = 268435456', 'min_free_bytes = 1048576', '',
		].join('\n'));
		fs.mkdirSync(path.join(this.dir, 'data'));
	}

	// REST call from the test itself (setup and checks), with the token.
	async req(method, p, body) {
		const headers = this.token ? { Authorization: 'Bearer ' + this.token } : {};
		if (body !== undefined) headers['Content-Type'] = 'application/json';
		const r = await fetch(`${this.base}/api/${p}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
		const text = await r.text();
		return { status: r.status, json: text ? JSON.parse(text) : null };
	}

	async ok(method, p, body) {
		const r = await this.req(method, p, body);
		if (r.status >= 300) throw new Error(`${method} /api/${p}: ${r.status} ${JSON.stringify(r.json)}`);
		return r.json;
	}

	// SIGTERM (SIGKILL after 5 s); resolves with the exit code.
	async stop() {
		if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return this.proc && this.exited;
		this.proc.kill('SIGTERM');
		const t = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
		const rc = await this.exited;
		clearTimeout(t);
		return rc;
	}

	cleanup() {
		if (this.dir) fs.rmSync(this.dir, { recursive: true, force: true });
	}
}

// ---- the browser ----------------------------------------------------------

let browser;
const gwA = new Daemon('open', '');
const gwB = new Daemon('token', TOKEN);
const devices = [];   // SimDevices to close at the end
const st = {};        // what one test leaves to the next (task id ...)
let current = null;   // the running test's pages: screenshots, offsite requests

function slug(s) {
	return s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 50);
}

// A fresh page watched for requests leaving the gateway and for uncaught
// errors in the page; both fail the test.
async function open(gw, hash = '', { context, locale = 'en-US' } = {}) {
	const ctx = context || await browser.newContext({ locale, viewport: { width: 1440, height: 900 } });
	const page = await ctx.newPage();
	page.setDefaultTimeout(WAIT);
	const rec = { page, ctx, own: !context, loads: 0, requests: [] };
	current.pages.push(rec);
	page.on('request', (r) => {
		rec.requests.push(r.url());
		if (!r.url().startsWith(gw.base + '/') && !r.url().startsWith(gw.base.replace('http', 'ws') + '/') && !r.url().startsWith('data:'))
			current.problems.push('request left the gateway: ' + r.url());
	});
	page.on('pageerror', (e) => current.problems.push('uncaught error in the page: ' + e.message));
	page.on('load', () => rec.loads++);
	await page.goto(`${gw.base}/${hash ? '#/' + hash : ''}`);
	return page;
}

async function shot(page, name) {
	fs.mkdirSync(SHOTS, { recursive: true });
	const file = path.join(SHOTS, name + '.png');
	await page.screenshot({ path: file, fullPage: true, animations: 'disabled' });
	return file;
}

const tid = (page, id) => page.getByTestId(id);
const state = (loc) => loc.getAttribute('data-state');
const text = async (loc) => (await loc.textContent()).trim();
// The column a device's card is in, and its bar's value (short timeouts:
// these are polled by until()).
const cardCol = (page, dev) => page.locator(`[data-testid="card-${dev}"]`)
	.evaluate((el) => el.closest('section').dataset.state, undefined, { timeout: 1000 });
const cardPct = (page, dev) => page.locator(`[data-testid="card-${dev}"] [role=progressbar]`)
	.getAttribute('aria-valuenow', { timeout: 1000 }).then(Number);

async function waitCard(page, dev, col, what, minPct = 0) {
	return until(async () => (await cardCol(page, dev)) === col && (await cardPct(page, dev)) >= minPct,
		`card ${dev} in column ${col}${minPct ? ` with at least ${minPct} %` : ''} (${what})`);
}

async function seedDevice(gw, id, version = '1.0') {
	const d = new SimDevice(gw.tcpPort, id, PRODUCT);
	await d.connect();
	d.report(version);
	await until(async () => (await gw.req('GET', 'devices/' + id)).json?.online === true, `device ${id} online`);
	d.close();
	await until(async () => (await gw.req('GET', 'devices/' + id)).json?.online === false, `device ${id} offline`);
}

async function connectDevice(gw, id, version = '1.0') {
	const d = new SimDevice(gw.tcpPort, id, PRODUCT);
	devices.push(d);
	await d.connect();
	d.report(version);
	return d;
}

// ---- the tests ------------------------------------------------------------

test('the console is under 150 KiB and loads nothing from outside', async () => {
	let total = 0;
	const files = [];
	const walk = (dir) => {
		for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
			const p = path.join(dir, e.name);
			if (e.isDirectory()) walk(p);
			else {
				total += fs.statSync(p).size;
				files.push(p);
			}
		}
	};
	walk(WWW);
	comment(`${files.length} files, ${total} bytes (limit ${WWW_MAX})`);
	check(files.some((f) => f.endsWith('index.html')), 'index.html exists');
	check(total < WWW_MAX, `console is ${total} bytes, over ${WWW_MAX}`);
	for (const f of files) {
		const s = fs.readFileSync(f, 'utf8');
		check(!/(?:src|href|from|import|url)\s*[=(]?\s*["']?(?:https?:)?\/\/[^/]/i.test(s), `${path.relative(ROOT, f)} references another host`);
	}
	// The daemon serves the same files.
	const r = await fetch(gwA.base + '/');
	eq(r.status, 200, 'GET / status');
	check((await r.text()).includes('js/app.js'), 'GET / is index.html');
	const js = await fetch(gwA.base + '/js/app.js');
	check(/javascript/.test(js.headers.get('content-type') || ''), `js/app.js served as JavaScript (got ${js.headers.get('content-type')}): module scripts need it`);
	const page = await open(gwA);
	await tid(page, 'fw-table').waitFor();
	await shot(page, '01-empty-firmware-list');
});

test('the console loads, shows the live feed as live', async () => {
	const page = await open(gwA, 'firmware');
	await tid(page, 'fw-table').waitFor();
	await until(async () => (await state(tid(page, 'live-indicator'))) === 'live', 'the live indicator to show live');
	eq(await text(tid(page, 'nav-firmware')), 'Firmware', 'nav text');
	check((await page.title()).includes('Firmware'), 'page title names the page');
	await shot(page, '02-live');
});

test('create a firmware through the UI', async () => {
	const page = await open(gwA, 'firmware');
	await tid(page, 'fw-new').click();
	const dlg = tid(page, 'fw-dialog');
	await dlg.getByTestId('fw-id').fill(FW_ID);
	await dlg.getByTestId('fw-productId').fill(PRODUCT);
	await dlg.getByTestId('fw-name').fill('Sensor firmware');
	await dlg.getByTestId('fw-version').fill('2.0');
	await dlg.getByTestId('fw-versionOrder').fill('2');
	await dlg.getByTestId('fw-size').fill(String(IMAGE.length));
	await dlg.getByTestId('fw-signMethod').selectOption('sha256');
	await dlg.getByTestId('fw-sign').fill(IMAGE_SHA.toUpperCase());
	await dlg.getByTestId('fw-properties').fill('{"hw": "A2"}');
	await shot(page, '03-firmware-form');
	await dlg.getByTestId('fw-save').click();
	await dlg.waitFor({ state: 'detached' });
	const row = tid(page, 'fw-row-' + FW_ID);
	await row.waitFor();
	eq(await text(row.getByTestId('fw-version')), '2.0', 'version in the row');
	eq(await state(row.getByTestId('image-state')), 'none', 'image state before the upload');
	const fw = await gwA.ok('GET', 'firmware/' + FW_ID);
	eq(fw.sign, IMAGE_SHA, 'stored sign');
	eq(fw.size, IMAGE.length, 'stored size');
	eq(fw.properties.hw, 'A2', 'stored properties');
	await shot(page, '03-firmware-created');
});

test('a refused form shows the API\'s error and stays open (keyboard only)', async () => {
	const page = await open(gwA, 'firmware');
	await tid(page, 'fw-table').waitFor();
	await tid(page, 'fw-new').focus();
	await page.keyboard.press('Enter');
	const dlg = tid(page, 'fw-dialog');
	await dlg.waitFor();
	// The first field has the focus: type, Tab to the next ones.
	await page.keyboard.type('fw-dup');
	await page.keyboard.press('Tab');
	await page.keyboard.type(PRODUCT);
	await page.keyboard.press('Tab');
	await page.keyboard.type('Duplicate');
	await page.keyboard.press('Tab');
	await page.keyboard.type('2.0');
	await page.keyboard.press('Enter');
	const err = dlg.getByTestId('form-error');
	await until(async () => (await text(err)).includes('409'), 'the 409 error in the form');
	const msg = await text(err);
	check(/already exists/.test(msg), `error text is the API's: ${msg}`);
	await shot(page, '04-form-error');
	await page.keyboard.press('Escape');
	await dlg.waitFor({ state: 'detached' });
	eq((await gwA.req('GET', 'firmware/fw-dup')).status, 404, 'nothing created');
});

test('upload the image: the progress bar reaches 100 and the image is cached', async () => {
	const page = await open(gwA, 'firmware');
	const row = tid(page, 'fw-row-' + FW_ID);
	await row.getByTestId('fw-upload').click();
	const dlg = tid(page, 'upload-dialog');
	await dlg.getByTestId('upload-file').setInputFiles({ name: 'sensor-2.0.bin', mimeType: 'application/octet-stream', buffer: IMAGE });
	// Every value the bar shows, in order.
	await dlg.getByTestId('upload-progress').evaluate((el) => {
		window.seenUpload = [];
		new MutationObserver(() => window.seenUpload.push(Number(el.getAttribute('aria-valuenow'))))
			.observe(el, { attributes: true, attributeFilter: ['aria-valuenow'] });
	});
	await dlg.getByTestId('upload-start').click();
	await until(async () => (await dlg.locator('[data-testid=upload-status] [data-testid=image-state]').count()) > 0 ||
		(await text(dlg.getByTestId('upload-error'))), 'the upload to finish');
	eq(await text(dlg.getByTestId('upload-error')), '', 'upload error');
	eq(await dlg.getByTestId('upload-progress').getAttribute('aria-valuenow'), '100', 'progress bar at the end');
	const seen = await page.evaluate(() => window.seenUpload);
	comment('progress values seen: ' + seen.join(' '));
	check(seen.at(-1) === 100 && seen.every((v, i) => !i || v >= seen[i - 1]), `progress rises to 100: ${seen}`);
	eq(await state(dlg.locator('[data-testid=upload-status] [data-testid=image-state]')), 'ready', 'image state in the dialog');
	eq(await text(dlg.getByTestId('upload-sha256')), IMAGE_SHA, 'sha256 shown');
	await shot(page, '05-upload-done');
	await dlg.getByTestId('upload-close').click();
	await until(async () => (await state(row.getByTestId('image-state'))) === 'ready', 'the row to show the image cached');
	eq(await text(row.getByTestId('image-state')), 'cached', 'image badge text');
	const fw = await gwA.ok('GET', 'firmware/' + FW_ID);
	eq(fw.image.state, 'ready', 'API image state');
	eq(fw.image.sha256, IMAGE_SHA, 'API image sha256');
});

test('create a push task on the firmware page', async () => {
	for (const id of ['d1', 'd2', 'd3', 'd4', 'd5']) await seedDevice(gwA, id);
	const page = await open(gwA, 'firmware');
	await tid(page, 'fw-row-' + FW_ID).getByTestId('fw-open').click();
	await tid(page, 'fw-detail').waitFor();
	check((await text(tid(page, 'image-sha256'))) === IMAGE_SHA, 'detail shows the image sha256');
	await tid(page, 'task-new').click();
	const dlg = tid(page, 'task-dialog');
	await dlg.getByTestId('task-name').fill('Roll out 2.0');
	await dlg.getByTestId('task-mode').selectOption('push');
	await dlg.getByTestId('task-save').click();
	await dlg.waitFor({ state: 'detached' });
	const row = page.locator('[data-testid^="task-row-"]', { hasText: 'Roll out 2.0' });
	await row.waitFor();
	st.task = await row.getAttribute('data-id');
	const task = await gwA.ok('GET', 'tasks/' + st.task);
	eq(task.mode, 'push', 'task mode');
	eq(task.state, 'created', 'task state');
	eq(task.firmwareId, FW_ID, 'task firmware');
	await shot(page, '06-task-created');
});

test('publish the task to a device selected from the list', async () => {
	const page = await open(gwA, 'firmware/' + FW_ID);
	await tid(page, 'task-row-' + st.task).getByTestId('task-publish').click();
	const dlg = tid(page, 'publish-dialog');
	await dlg.getByTestId('pick-d1').waitFor();
	eq(await dlg.locator('input[type=checkbox]').count(), 5, 'devices of the product offered');
	await dlg.getByTestId('pick-d1').check();
	await shot(page, '07-publish-dialog');
	await dlg.getByTestId('publish-submit').click();
	await until(async () => /1 added/.test(await text(dlg.getByTestId('publish-result'))), 'the publish result');
	await dlg.getByTestId('publish-close').click();
	const recs = (await gwA.ok('GET', `tasks/${st.task}/records`)).items;
	eq(recs.length, 1, 'records after publish');
	eq(recs[0].deviceId, 'd1', 'the picked device');
	eq(recs[0].state, 'waiting', 'record state (device offline)');
	await until(async () => (await text(tid(page, 'task-row-' + st.task).getByTestId('count-waiting'))).startsWith('1'), 'the row to count 1 waiting');
	await shot(page, '07-published');
});

test('a device\'s card moves waiting -> processing -> success, bar to 100 %, no reload', async () => {
	const page = await open(gwA, 'firmware/' + FW_ID);
	await tid(page, 'task-row-' + st.task).getByTestId('task-open').click();
	await tid(page, 'card-d1').waitFor();
	await page.evaluate(() => (window.notReloaded = true));
	const loads = current.pages.at(-1).loads;
	await waitCard(page, 'd1', 'waiting', 'published, device offline');
	await until(async () => (await state(tid(page, 'live-indicator'))) === 'live', 'the live feed');

	let release;
	const gate = new Promise((r) => (release = r));
	const d1 = await connectDevice(gwA, 'd1');
	const run = (async () => {
		const up = await d1.waitPush();
		check(up.firmwareId === FW_ID && up.version === '2.0', `push names the firmware: ${JSON.stringify(up)}`);
		const img = await d1.fetchImage(up.firmwareId, up.size);
		check(sha256(img) === IMAGE_SHA, 'the device got the uploaded image');
		for (const p of [10, 30, 50, 70, 90]) {
			d1.progress(up.version, up.firmwareId, p);
			await sleep(300);
		}
		await gate;
		d1.progress(up.version, up.firmwareId, 100, { complete: true });
		d1.report(up.version);
	})();
	run.catch(() => {});
	await waitCard(page, 'd1', 'processing', 'push accepted');
	await shot(page, '08-processing');
	await until(async () => (await cardCol(page, 'd1')) === 'processing' && (await cardPct(page, 'd1')) >= 50, 'the card at 50 % or more while processing');
	release();
	await run;
	await waitCard(page, 'd1', 'success', 'complete', 100);
	eq(await text(tid(page, 'card-d1').getByTestId('card-pct')), '100 %', 'percent text');
	eq(await tid(page, 'col-count-success').textContent(), '1', 'success column count');
	check(await page.evaluate(() => window.notReloaded === true), 'the page was not reloaded');
	eq(current.pages.at(-1).loads, loads, 'load events since the board opened');
	await shot(page, '08-success');
});

test('live feed: a record\'s progress updates its card in place', async () => {
	await gwA.ok('POST', `tasks/${st.task}/publish`, { deviceIds: ['d2'] });
	const page = await open(gwA, 'tasks/' + st.task);
	await waitCard(page, 'd2', 'waiting', 'published over REST');
	await until(async () => (await state(tid(page, 'live-indicator'))) === 'live', 'the live feed');
	const d2 = await connectDevice(gwA, 'd2');
	const up = await d2.waitPush();
	await waitCard(page, 'd2', 'processing', 'push accepted');
	await tid(page, 'card-d2').evaluate((el) => {
		el.sameNode = true;
		window.seenD2 = [];
		const bar = el.querySelector('[role=progressbar]');
		new MutationObserver(() => window.seenD2.push(Number(bar.getAttribute('aria-valuenow'))))
			.observe(bar, { attributes: true, attributeFilter: ['aria-valuenow'] });
	});
	const rec = current.pages.at(-1);
	const before = rec.requests.length;
	for (const p of [15, 35, 55, 75]) {
		d2.progress(up.version, up.firmwareId, p);
		await until(async () => (await cardPct(page, 'd2')) === p, `the bar at ${p} %`, 5000);
	}
	d2.progress(up.version, up.firmwareId, 75, { success: false, errorReason: 'flash write failed' });
	await waitCard(page, 'd2', 'failed', 'device reported failure');
	eq(await text(tid(page, 'card-d2').getByTestId('card-reason')), 'flash write failed', 'reason on the card');
	check(await tid(page, 'card-d2').evaluate((el) => el.sameNode === true), 'the same card element moved (no redraw)');
	const seen = await page.evaluate(() => window.seenD2);
	comment('bar values seen: ' + seen.join(' '));
	for (const p of [15, 35, 55, 75]) check(seen.includes(p), `bar showed ${p}`);
	const rest = rec.requests.slice(before).filter((u) => u.includes('/api/'));
	eq(rest.length, 0, `REST requests while progress arrived (${rest.join(', ')})`);
	await shot(page, '09-failed-in-place');
});

test('the task board shows cards in every column; a card shows its history', async () => {
	await gwA.ok('POST', `tasks/${st.task}/publish`, { deviceIds: ['d3', 'd4', 'd5'] });
	await gwA.ok('DELETE', 'devices/d4');      // its waiting record becomes canceled
	const d5 = await connectDevice(gwA, 'd5');
	const up = await d5.waitPush();
	d5.progress(up.version, up.firmwareId, 45);
	const page = await open(gwA, 'tasks/' + st.task);
	const want = { d1: 'success', d2: 'failed', d3: 'waiting', d4: 'canceled', d5: 'processing' };
	for (const [dev, col] of Object.entries(want)) await waitCard(page, dev, col, 'board setup');
	await until(async () => (await cardPct(page, 'd5')) === 45, 'd5 at 45 %');
	await page.setViewportSize({ width: 1280, height: 440 });   // the board, not the empty page below
	const file = await shot(page, 'task-board');
	await page.setViewportSize({ width: 1440, height: 900 });
	comment('board screenshot: ' + path.relative(ROOT, file));
	await tid(page, 'card-d1').click();
	const dlg = tid(page, 'history-dialog');
	const rows = dlg.locator('[data-testid=history-table] tbody tr');
	await until(async () => (await rows.count()) >= 2, 'history rows');
	const all = await text(dlg.getByTestId('history-table'));
	check(/Processing/.test(all) && /Success/.test(all), `history shows the moves: ${all}`);
	await shot(page, '10-history');
	await page.keyboard.press('Escape');
	await dlg.waitFor({ state: 'detached' });
});

test('devices page: online, transport, version, and devices coming live', async () => {
	const page = await open(gwA, 'devices');
	const r1 = tid(page, 'dev-row-d1');
	await r1.waitFor();
	eq(await text(r1.getByTestId('dev-version')), '2.0', 'd1 version after the upgrade');
	eq(await state(r1.getByTestId('dev-online')), 'online', 'd1 online');
	check(/tcp/i.test(await text(r1.getByTestId('dev-transport'))), 'd1 transport tcp');
	eq(await state(tid(page, 'dev-row-d3').getByTestId('dev-online')), 'offline', 'd3 offline');
	eq(await tid(page, 'dev-row-d4').count(), 0, 'deleted device gone');
	await until(async () => (await state(tid(page, 'live-indicator'))) === 'live', 'the live feed');
	const d6 = await connectDevice(gwA, 'd6', '1.5');
	await until(async () => (await tid(page, 'dev-row-d6').count()) === 1, 'd6 to appear without reload');
	await until(async () => (await state(tid(page, 'dev-row-d6').getByTestId('dev-online'))) === 'online', 'd6 online');
	await shot(page, '11-devices');
	d6.close();
	await until(async () => (await state(tid(page, 'dev-row-d6').getByTestId('dev-online'))) === 'offline', 'd6 offline after disconnect');
});

test('gateway page: cache usage, cloud and serial not configured', async () => {
	const page = await open(gwA, 'gateway');
	await tid(page, 'cache-row-' + IMAGE_SHA).waitFor();
	eq(await state(tid(page, 'cache-status')), 'ok', 'cache panel');
	check((await text(tid(page, 'cache-usage'))).includes('MiB'), 'usage in MiB');
	eq(await state(tid(page, 'cloud-status')), 'not-configured', 'cloud');
	eq(await text(tid(page, 'cloud-status')), 'Not configured', 'cloud text');
	eq(await state(tid(page, 'serial-status')), 'not-configured', 'serial');
	eq(await text(tid(page, 'health-status')), 'ok', 'health');
	await shot(page, '12-gateway');
});

test('publish a pull task to all devices of the product, cancel it on its board', async () => {
	const page = await open(gwA, 'firmware/' + FW_ID);
	await tid(page, 'task-new').click();
	const dlg = tid(page, 'task-dialog');
	await dlg.getByTestId('task-name').fill('Pull 2.0 everywhere');
	await dlg.getByTestId('task-mode').selectOption('pull');
	await dlg.getByTestId('task-timeout').fill('600');
	await dlg.getByTestId('task-save').click();
	await dlg.waitFor({ state: 'detached' });
	const row = page.locator('[data-testid^="task-row-"]', { hasText: 'Pull 2.0 everywhere' });
	await row.waitFor();
	const id = await row.getAttribute('data-id');
	eq((await gwA.ok('GET', 'tasks/' + id)).timeoutSeconds, 600, 'timeout saved');
	await row.getByTestId('task-publish').click();
	const pub = tid(page, 'publish-dialog');
	await pub.getByTestId('pick-d1').waitFor();
	await pub.getByTestId('pub-all').check();
	await pub.getByTestId('publish-submit').click();
	await until(async () => /^Published/.test(await text(pub.getByTestId('publish-result'))), 'the publish result');
	comment(await text(pub.getByTestId('publish-result')));
	await pub.getByTestId('publish-close').click();
	const devs = (await gwA.ok('GET', `devices?productId=${PRODUCT}&size=1000`)).total;
	const t1 = await gwA.ok('GET', 'tasks/' + id);
	eq(t1.counts.total, devs, 'every device of the product is in the task');
	check(t1.counts.waiting > 0, `some records wait: ${JSON.stringify(t1.counts)}`);
	await row.getByTestId('task-open').click();
	await until(async () => Number(await tid(page, 'col-count-waiting').textContent()) === t1.counts.waiting, 'the waiting column');
	await tid(page, 'task-cancel').click();
	await tid(page, 'confirm-ok').click();
	await until(async () => (await state(tid(page, 'task-state'))) === 'canceled', 'the task shown canceled');
	await until(async () => Number(await tid(page, 'col-count-canceled').textContent()) === t1.counts.waiting + t1.counts.canceled, 'the waiting cards canceled');
	eq(await tid(page, 'col-count-waiting').textContent(), '0', 'nothing waits');
	check(await tid(page, 'task-publish').isDisabled(), 'a canceled task cannot be published');
	eq((await gwA.ok('GET', 'tasks/' + id)).state, 'canceled', 'API task state');
	await shot(page, '13-task-canceled');
});

test('edit and delete firmware; a refused delete shows the API\'s error', async () => {
	const page = await open(gwA, 'firmware');
	await tid(page, 'fw-row-' + FW_ID).getByTestId('fw-delete').click();
	await tid(page, 'confirm-ok').click();
	await until(async () => /409/.test(await text(tid(page, 'error-banner'))), 'the 409 banner (task still running)');
	await shot(page, '13-delete-refused');
	eq((await gwA.req('GET', 'firmware/' + FW_ID)).status, 200, 'firmware kept');

	await tid(page, 'fw-new').click();
	const dlg = tid(page, 'fw-dialog');
	await dlg.getByTestId('fw-id').fill('fw-tmp');
	await dlg.getByTestId('fw-productId').fill(PRODUCT);
	await dlg.getByTestId('fw-name').fill('Temporary');
	await dlg.getByTestId('fw-version').fill('3.0');
	await dlg.getByTestId('fw-save').click();
	const row = tid(page, 'fw-row-fw-tmp');
	await row.waitFor();
	await row.getByTestId('fw-edit').click();
	const edit = tid(page, 'fw-dialog');
	await edit.getByTestId('fw-name').fill('Temporary renamed');
	await edit.getByTestId('fw-description').fill('edited in the console');
	await edit.getByTestId('fw-save').click();
	await edit.waitFor({ state: 'detached' });
	await until(async () => (await text(row.getByTestId('fw-open'))) === 'Temporary renamed', 'the new name in the row');
	const fw = await gwA.ok('GET', 'firmware/fw-tmp');
	eq(fw.description, 'edited in the console', 'description saved');
	eq(fw.version, '3.0', 'version unchanged');
	await row.getByTestId('fw-delete').click();
	await tid(page, 'confirm-cancel').click();
	eq(await row.count(), 1, 'kept after answering no');
	await row.getByTestId('fw-delete').click();
	await tid(page, 'confirm-ok').click();
	await row.waitFor({ state: 'detached' });
	eq((await gwA.req('GET', 'firmware/fw-tmp')).status, 404, 'deleted in the API');
	await shot(page, '13-after-delete');
});

test('a rollout task shows its wave and slots; pause and resume on its board', async () => {
	await seedDevice(gwA, 'r1');
	await seedDevice(gwA, 'r2');
	const task = await gwA.ok('POST', `firmware/${FW_ID}/tasks`, {
		name: 'Line 2 rollout', mode: 'pull',
		rollout: { maxConcurrent: 1, waves: [{ percent: 50 }, { percent: 50 }] },
	});
	await gwA.ok('POST', `tasks/${task.id}/publish`, { deviceIds: ['r1', 'r2'] });
	const page = await open(gwA, 'tasks/' + task.id);
	const line = tid(page, 'task-rollout');
	await until(async () => /Wave 1 of 2/.test(await text(line)) && /slots 0\/1/.test(await text(line)),
		'the rollout line');
	await tid(page, 'task-pause').click();
	await until(async () => /Paused: paused by the operator/.test(await text(line)), 'paused on the board');
	eq((await gwA.ok('GET', 'tasks/' + task.id)).paused, true, 'the task is paused');
	await shot(page, 'rollout-paused');
	await tid(page, 'task-resume').click();
	await until(async () => !/Paused/.test(await text(line)), 'resumed on the board');
	eq((await gwA.ok('GET', 'tasks/' + task.id)).paused, false, 'the task runs again');
	const ev = (await gwA.ok('GET', `tasks/${task.id}/events`)).items.map((e) => e.event);
	eq(ev.join(','), 'published,paused,resumed', 'the decisions in the task events');
});

test('language: English <-> 中文, remembered, default from the browser', async () => {
	const page = await open(gwA, 'tasks/' + st.task);
	await tid(page, 'card-d1').waitFor();
	eq(await text(tid(page, 'nav-firmware')), 'Firmware', 'English nav');
	eq(await text(tid(page, 'lang-toggle')), '中文', 'toggle offers Chinese');
	await tid(page, 'lang-toggle').click();
	await until(async () => (await text(tid(page, 'nav-firmware'))) === '固件', 'Chinese nav');
	eq(await page.getAttribute('html', 'lang'), 'zh-CN', 'html lang');
	await until(async () => (await text(tid(page, 'col-success').locator('h2'))).startsWith('升级完成'), 'Chinese column names');
	await tid(page, 'card-d1').waitFor();
	await shot(page, '14-board-zh');
	await page.reload();
	await until(async () => (await text(tid(page, 'nav-firmware'))) === '固件', 'Chinese kept after a reload');
	eq(await text(tid(page, 'lang-toggle')), 'English', 'toggle offers English');
	await tid(page, 'lang-toggle').click();
	await until(async () => (await text(tid(page, 'nav-firmware'))) === 'Firmware', 'English again');
	await page.reload();
	await until(async () => (await text(tid(page, 'nav-firmware'))) === 'Firmware', 'English kept after a reload');
	const zh = await open(gwA, 'devices', { locale: 'zh-CN' });
	await until(async () => (await text(tid(zh, 'nav-devices'))) === '设备', 'Chinese by default for a zh-CN browser');
	await shot(zh, '14-devices-zh');
});

test('login with the API token; a wrong token shows an error; logout', async () => {
	const page = await open(gwB);
	await tid(page, 'login-form').waitFor();
	eq(await state(tid(page, 'live-indicator')), 'offline', 'no live feed before login');
	await tid(page, 'login-token').fill('wrong-token');
	await tid(page, 'login-submit').click();
	await until(async () => /Wrong token/.test(await text(tid(page, 'login-error'))), 'the wrong-token error');
	check(await tid(page, 'login-form').isVisible(), 'still on the login form');
	await shot(page, '15-login-wrong');
	await tid(page, 'login-token').fill(TOKEN);
	await tid(page, 'login-token').press('Enter');
	await tid(page, 'fw-table').waitFor();
	await until(async () => (await state(tid(page, 'live-indicator'))) === 'live', 'the live feed with the token');
	eq(await page.evaluate(() => sessionStorage.getItem('otagw.token')), TOKEN, 'token in session storage');
	eq(await page.evaluate(() => localStorage.getItem('otagw.token')), null, 'token not in local storage');
	await page.reload();
	await tid(page, 'fw-table').waitFor();
	eq(await tid(page, 'login-form').count(), 0, 'still logged in after a reload');
	await shot(page, '15-logged-in');
	// Another tab of the same browser asks again (the token is per tab).
	const other = await open(gwB, 'devices', { context: current.pages[0].ctx });
	await tid(other, 'login-form').waitFor();
	await tid(page, 'logout').click();
	await tid(page, 'login-form').waitFor();
	eq(await page.evaluate(() => sessionStorage.getItem('otagw.token')), null, 'token forgotten');
	eq(await text(tid(page, 'login-error')), 'Logged out.', 'logout message');
});

test('the live feed comes back after a gateway restart and reloads the board', async () => {
	const page = await open(gwA, 'tasks/' + st.task);
	await waitCard(page, 'd5', 'processing', 'before the restart');
	await until(async () => (await state(tid(page, 'live-indicator'))) === 'live', 'the live feed');
	await page.evaluate(() => (window.notReloaded = true));
	const rec = current.pages.at(-1);
	eq(await gwA.stop(), 0, 'otagw exit code on SIGTERM');
	await until(async () => (await state(tid(page, 'live-indicator'))) !== 'live', 'the indicator to leave live');
	await shot(page, '17-offline');
	const before = rec.requests.length;
	await gwA.start();
	await until(async () => (await state(tid(page, 'live-indicator'))) === 'live', 'the live feed to come back', 20000);
	await until(async () => rec.requests.slice(before).some((u) => u.includes(`/api/tasks/${st.task}/records`)), 'the board to reload after reconnecting');
	// The restart dropped d5's connection; it reconnects and goes on.
	const d5 = await connectDevice(gwA, 'd5');
	await until(async () => (await gwA.req('GET', 'devices/d5')).json?.online === true, 'd5 online again');
	d5.progress('2.0', FW_ID, 80);
	await until(async () => (await cardPct(page, 'd5')) === 80, 'd5 at 80 % over the new feed');
	check(await page.evaluate(() => window.notReloaded === true), 'the page was not reloaded');
	await shot(page, '17-reconnected');
});

test('both daemons stop cleanly: exit 0 on SIGTERM, no sanitizer report', async () => {
	for (const d of devices) d.close();
	for (const gw of [gwA, gwB]) {
		eq(await gw.stop(), 0, `otagw (${gw.name}) exit code`);
		const alarms = gw.log.split('\n').filter((l) => /Sanitizer|runtime error:/.test(l));
		check(!alarms.length, `sanitizer report from otagw (${gw.name}):\n${alarms.slice(0, 10).join('\n')}`);
	}
});

// ---- runner ---------------------------------------------------------------

async function main() {
	say('1..' + tests.length);
	let failed = 0;
	let setupError = null;
	const t0 = Date.now();
	fs.mkdirSync(SHOTS, { recursive: true });
	for (const f of fs.readdirSync(SHOTS)) if (f.startsWith('FAILED-')) fs.rmSync(path.join(SHOTS, f));   // stale
	let pw;
	try {
		pw = await import('playwright-core');
	} catch (e) {
		setupError = `playwright-core is missing (${e.message.split('\n')[0]}); run: npm ci --prefix tests/console`;
	}
	if (!setupError && !fs.existsSync(BIN)) setupError = `no daemon binary ${BIN} (make, or set OTAGW_BIN)`;
	if (!setupError) {
		try {
			browser = await pw.chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
			await gwA.start();
			await gwB.start();
		} catch (e) {
			setupError = 'setup failed: ' + e.message + (gwA.log ? '\notagw said:\n' + gwA.log.slice(-2000) : '');
		}
	}
	for (const [i, tc] of tests.entries()) {
		const n = i + 1;
		if (setupError || Date.now() - t0 > BUDGET) {
			const why = setupError || 'the time budget ran out';
			failed++;
			say(`not ok ${n} - ${tc.name}`);
			comment(why);
			continue;
		}
		current = { pages: [], problems: [] };
		const started = Date.now();
		let err = null;
		let timer;
		try {
			await Promise.race([tc.fn(), new Promise((_, rej) => (timer = setTimeout(() => rej(new Error(`test timed out after ${TEST_TIMEOUT} ms`)), TEST_TIMEOUT)))]);
			if (current.problems.length) throw new Error(current.problems.join('\n'));
		} catch (e) {
			err = e;
		} finally {
			clearTimeout(timer);
		}
		if (err && current.pages.length) {
			try {
				const f = await shot(current.pages.at(-1).page, `FAILED-${String(n).padStart(2, '0')}-${slug(tc.name)}`);
				err.message += '\nscreenshot: ' + path.relative(ROOT, f);
			} catch { /* the page may be gone */ }
		}
		for (const p of current.pages) await (p.own ? p.ctx.close() : p.page.close()).catch(() => {});
		const secs = ((Date.now() - started) / 1000).toFixed(1);
		if (err) {
			failed++;
			say(`not ok ${n} - ${tc.name}`);
			comment((err.stack || String(err)).split('\n').slice(0, 12).join('\n'));
			if (current.problems.length) comment(current.problems.join('\n'));
			comment('otagw log (last lines):\n' + gwA.log.split('\n').slice(-15).join('\n'));
		} else {
			say(`ok ${n} - ${tc.name} (${secs} s)`);
		}
	}
	for (const d of devices) d.close();
	if (browser) await browser.close().catch(() => {});
	await Promise.all([gwA.stop(), gwB.stop()]);
	gwA.cleanup();
	gwB.cleanup();
	comment(`${tests.length - failed} of ${tests.length} passed in ${((Date.now() - t0) / 1000).toFixed(1)} s; screenshots in ${path.relative(process.cwd(), SHOTS) || SHOTS}`);
	return failed ? 1 : 0;
}

const hard = setTimeout(() => {
	say('# console.test.mjs: hard timeout, killing the daemons');
	for (const g of [gwA, gwB]) if (g.proc) g.proc.kill('SIGKILL');
	process.exit(1);
}, BUDGET + 25000);
main().then((rc) => {
	clearTimeout(hard);
	process.exit(rc);
}, (e) => {
	say('# ' + (e.stack || e));
	for (const g of [gwA, gwB]) if (g.proc) g.proc.kill('SIGKILL');
	process.exit(1);
});
