// SPDX-License-Identifier: MIT
// live.js - the live feed (WebSocket api/live, subprotocol otagw-live.v1).
// Sends the auth message first, then turns the daemon's frames into events:
//   'state'  detail: 'connecting' | 'live' | 'offline'
//   'hello'  (re)connected: pages reload what they show, as frames may have
//            been missed while the socket was down
//   'frame'  detail: {type: 'records'|'tasks'|'devices'|'resync', items?}
//   'unauthorized'  the daemon closed with 4001 (wrong token)
// Reconnects with exponential backoff and jitter until stop().
const PROTOCOL = 'otagw-live.v1';
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000, 30000];
const CLOSE_UNAUTHORIZED = 4001;

export class Live extends EventTarget {
	constructor(getToken) {
		super();
		this.getToken = getToken;
		this.ws = null;
		this.timer = 0;
		this.attempt = 0;
		this.state = 'offline';
		this.running = false;
	}

	start() {
		if (this.running) return;
		this.running = true;
		this.attempt = 0;
		this.connect();
	}

	stop() {
		this.running = false;
		clearTimeout(this.timer);
		if (this.ws) {
			this.ws.onclose = null;
			this.ws.close(1000);
			this.ws = null;
		}
		this.setState('offline');
	}

	setState(s) {
		if (s === this.state) return;
		this.state = s;
		this.dispatchEvent(new CustomEvent('state', { detail: s }));
	}

	connect() {
		const u = new URL('api/live', location.href);
		u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
		this.setState('connecting');
		let ws;
		try {
			ws = new WebSocket(u, PROTOCOL);
		} catch {
			this.retry();
			return;
		}
		this.ws = ws;
		ws.onopen = () => ws.send(JSON.stringify({ type: 'auth', token: this.getToken() }));
		ws.onmessage = (ev) => this.message(ev.data);
		ws.onclose = (ev) => {
			this.ws = null;
			this.setState('offline');
			if (ev.code === CLOSE_UNAUTHORIZED) {
				this.running = false;
				this.dispatchEvent(new Event('unauthorized'));
				return;
			}
			this.retry();
		};
	}

	retry() {
		if (!this.running) return;
		const base = BACKOFF_MS[Math.min(this.attempt++, BACKOFF_MS.length - 1)];
		// 0.75-1.25x jitter: a gateway restart must not see every open
		// console reconnect in the same millisecond.
		this.timer = setTimeout(() => this.connect(), base * (0.75 + Math.random() / 2));
	}

	message(data) {
		let m;
		try {
			m = JSON.parse(data);
		} catch {
			return; // not ours; the contract only sends JSON objects
		}
		if (!m || typeof m.type !== 'string') return;
		if (m.type === 'hello') {
			this.attempt = 0;
			this.setState('live');
			this.dispatchEvent(new Event('hello'));
			return;
		}
		this.dispatchEvent(new CustomEvent('frame', { detail: m }));
	}
}
