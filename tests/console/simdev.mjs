// SPDX-License-Identifier: MIT
// simdev.mjs - a TCP device for the console tests, speaking the jsonline
// codec of southbound/PROTOCOL.md as tests/devsim.py does: one compact JSON
// object per line; the first message carries headers.productId; chunk
// replies carry base64 data checked against length and crc32. Every wait is
// bounded; an ERROR from the gateway fails the wait that sees it.
import net from 'node:net';
import crypto from 'node:crypto';

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
	let c = n;
	for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
	return c >>> 0;
});

// CRC-32/ISO-HDLC (zlib's), as the protocol's crc32 field.
export function crc32(buf) {
	let c = 0xffffffff;
	for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
	return (c ^ 0xffffffff) >>> 0;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class SimDevice {
	constructor(port, id, productId, { timeout = 10000 } = {}) {
		this.port = port;
		this.id = id;
		this.productId = productId;
		this.timeout = timeout;
		this.sock = null;
		this.inbox = [];
		this.waiters = new Set();
		this.closed = true;
		this.first = true;
		this.mid = 0;
	}

	connect() {
		return new Promise((resolve, reject) => {
			const s = net.connect({ host: '127.0.0.1', port: this.port });
			const timer = setTimeout(() => {
				s.destroy();
				reject(new Error(`device ${this.id}: connect timed out`));
			}, this.timeout);
			let buf = '';
			s.setNoDelay(true);
			s.setEncoding('utf8');
			s.once('connect', () => {
				clearTimeout(timer);
				this.sock = s;
				this.closed = false;
				this.first = true;
				this.inbox = [];
				resolve(this);
			});
			s.on('data', (d) => {
				buf += d;
				let i;
				while ((i = buf.indexOf('\n')) >= 0) {
					const line = buf.slice(0, i).replace(/\r$/, '');
					buf = buf.slice(i + 1);
					if (line.trim()) this.deliver(JSON.parse(line));
				}
			});
			s.on('error', (e) => {
				clearTimeout(timer);
				if (this.closed) reject(e);
			});
			s.on('close', () => {
				this.closed = true;
				for (const w of this.waiters) w.fail(new Error(`device ${this.id}: the gateway closed the connection`));
			});
		});
	}

	deliver(msg) {
		this.inbox.push(msg);
		for (const w of [...this.waiters]) w.check();
	}

	// The first message in the inbox matching pred (removed), waiting up to
	// timeout ms for it.
	next(pred, what, timeout = this.timeout) {
		return new Promise((resolve, reject) => {
			const w = {
				check: () => {
					const i = this.inbox.findIndex(pred);
					if (i >= 0) return done(null, this.inbox.splice(i, 1)[0]);
					const e = this.inbox.find((m) => m.messageType === 'ERROR');
					if (e) done(new Error(`device ${this.id}: gateway answered ERROR ${JSON.stringify(e)} while waiting for ${what}`));
				},
				fail: (err) => done(err),
			};
			const timer = setTimeout(() => done(new Error(`device ${this.id}: no ${what} within ${timeout} ms`)), timeout);
			const done = (err, v) => {
				clearTimeout(timer);
				this.waiters.delete(w);
				if (err) reject(err);
				else resolve(v);
			};
			this.waiters.add(w);
			w.check();
			if (this.closed && this.waiters.has(w)) done(new Error(`device ${this.id}: not connected`));
		});
	}

	send(msg) {
		if (this.closed) throw new Error(`device ${this.id}: not connected`);
		const m = { deviceId: this.id, timestamp: Date.now(), ...msg };
		if (this.first) m.headers = { ...(m.headers || {}), productId: this.productId };
		this.first = false;
		this.sock.write(JSON.stringify(m) + '\n');
		return m;
	}

	nextId(prefix = 'm') {
		return `${prefix}${this.id}-${++this.mid}`;
	}

	report(version, properties = { sim: 'console-test' }) {
		return this.send({ messageType: 'REPORT_FIRMWARE', version, properties });
	}

	// Pull mode: REQUEST_FIRMWARE -> its REQUEST_FIRMWARE_REPLY.
	async pull(currentVersion) {
		const messageId = this.nextId('q');
		this.send({ messageType: 'REQUEST_FIRMWARE', messageId, requestVersion: '', currentVersion, headers: { force: false, latest: false } });
		return this.next((m) => m.messageType === 'REQUEST_FIRMWARE_REPLY' && m.messageId === messageId, 'REQUEST_FIRMWARE_REPLY');
	}

	// Push mode: waits for UPGRADE_FIRMWARE and accepts it.
	async waitPush(timeout) {
		const m = await this.next((x) => x.messageType === 'UPGRADE_FIRMWARE', 'UPGRADE_FIRMWARE', timeout);
		this.send({ messageType: 'UPGRADE_FIRMWARE_REPLY', messageId: m.messageId, success: true });
		return m;
	}

	// The image in-band (REQUEST_FIRMWARE_CHUNK), each reply checked.
	async fetchImage(firmwareId, size, chunk = 65536) {
		const parts = [];
		let offset = 0;
		while (offset < size) {
			const messageId = this.nextId('c');
			this.send({ messageType: 'REQUEST_FIRMWARE_CHUNK', messageId, firmwareId, offset, length: chunk });
			const r = await this.next((m) => m.messageType === 'REQUEST_FIRMWARE_CHUNK_REPLY' && m.messageId === messageId, `chunk at ${offset}`);
			if (r.success === false) throw new Error(`device ${this.id}: chunk at ${offset} refused: ${r.code} ${r.message}`);
			const data = Buffer.from(r.data || '', 'base64');
			if (r.offset !== offset || r.length !== data.length || r.crc32 !== crc32(data) || !data.length)
				throw new Error(`device ${this.id}: bad chunk reply at ${offset}: ${JSON.stringify({ ...r, data: data.length })}`);
			parts.push(data);
			offset += data.length;
		}
		return Buffer.concat(parts);
	}

	progress(version, firmwareId, progress, { complete = false, success = true, errorReason } = {}) {
		const m = { messageType: 'UPGRADE_FIRMWARE_PROGRESS', version, firmwareId, progress, complete, success };
		if (errorReason) m.errorReason = errorReason;
		return this.send(m);
	}

	close() {
		if (this.sock) this.sock.destroy();
		this.sock = null;
		this.closed = true;
	}
}

export const sha256 = (buf) => crypto.createHash('sha256').update(buf).digest('hex');
