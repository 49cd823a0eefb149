// SPDX-License-Identifier: MIT
// api.js - the gateway's REST API from the browser: JSON requests with the
// Bearer token (kept in sessionStorage), errors as ApiError carrying the
// API's {"error": ...} text, paging through long lists, and image uploads
// with progress (XMLHttpRequest: fetch() cannot report upload progress).
// A 401 anywhere fires 'unauthorized' on `events` so the app shows its login.
import { t } from './i18n.js';

const TOKEN_KEY = 'otagw.token';

export const events = new EventTarget();

export class ApiError extends Error {
	constructor(status, message) {
		super(message);
		this.status = status;
	}
}

export function getToken() {
	return sessionStorage.getItem(TOKEN_KEY) || '';
}

export function setToken(tok) {
	if (tok) sessionStorage.setItem(TOKEN_KEY, tok);
	else sessionStorage.removeItem(TOKEN_KEY);
}

// Paths are relative ("api/..."), so the console also works behind a proxy
// that mounts the gateway under a prefix.
function url(path) {
	return 'api/' + path.replace(/^\/+/, '');
}

function authHeaders() {
	const tok = getToken();
	return tok ? { Authorization: 'Bearer ' + tok } : {};
}

function fail(status, text, opts) {
	let msg = '';
	try {
		msg = JSON.parse(text).error || '';
	} catch {
		msg = '';
	}
	const err = new ApiError(status, msg || t('err.status', { status }));
	if (status === 401 && !opts.quiet401) events.dispatchEvent(new Event('unauthorized'));
	return err;
}

// api('GET', 'firmware/x') -> parsed JSON, null for 204. Throws ApiError.
// opts.quiet401: do not raise 'unauthorized' (the login form's own check).
export async function api(method, path, body, opts = {}) {
	const headers = authHeaders();
	if (body !== undefined) headers['Content-Type'] = 'application/json';
	let res;
	try {
		res = await fetch(url(path), {
			method, headers, cache: 'no-store',
			body: body === undefined ? undefined : JSON.stringify(body),
		});
	} catch {
		throw new ApiError(0, t('err.network'));
	}
	const text = await res.text();
	if (!res.ok) throw fail(res.status, text, opts);
	if (res.status === 204 || !text) return null;
	return JSON.parse(text);
}

export const get = (path, opts) => api('GET', path, undefined, opts);

// Every item of a paged list ({total, items}), 1000 per request, at most
// `max` items (a gateway has thousands of devices, not millions).
export async function getAll(path, max = 20000) {
	const sep = path.includes('?') ? '&' : '?';
	const items = [];
	for (let page = 0; items.length < max; page++) {
		const r = await get(`${path}${sep}size=1000&page=${page}`);
		items.push(...r.items);
		if (!r.items.length || items.length >= r.total) break;
	}
	return items;
}

// PUT of a raw body (a File) with upload progress: onProgress(0..100).
// Resolves with the JSON answer, rejects with ApiError like api().
export function upload(path, file, onProgress) {
	return new Promise((resolve, reject) => {
		const x = new XMLHttpRequest();
		x.open('PUT', url(path));
		for (const [k, v] of Object.entries(authHeaders())) x.setRequestHeader(k, v);
		x.setRequestHeader('Content-Type', 'application/octet-stream');
		x.upload.onprogress = (e) => {
			if (e.lengthComputable && e.total) onProgress(Math.floor((e.loaded * 100) / e.total));
		};
		x.onload = () => {
			if (x.status >= 200 && x.status < 300) {
				onProgress(100);
				try {
					resolve(JSON.parse(x.responseText));
				} catch {
					resolve(null);
				}
			} else {
				reject(fail(x.status, x.responseText, {}));
			}
		};
		// The gateway may refuse early (413, 507) and close before the body
		// is sent; the browser then reports only a network error.
		x.onerror = () => reject(new ApiError(0, t('err.upload')));
		x.onabort = () => reject(new ApiError(0, t('err.aborted')));
		x.send(file);
	});
}

export const enc = encodeURIComponent;
