// SPDX-License-Identifier: MIT
// app.js - the console's entry point: the shell (navigation, language
// switch, live indicator, logout), hash routing to the page modules, the
// login form shown whenever the API answers 401, and the live feed handed
// to the current page.
//
// A page module exports mount(root, params, ctx) and returns
// {refresh(), onFrame(frame), dispose?()}; ctx has error(e) and title(s).
import { get, events, getToken, setToken } from './api.js';
import { t, lang, setLang, otherLang } from './i18n.js';
import { Live } from './live.js';
import { h, errorText, showError, clearError } from './ui.js';
import * as firmware from './pages/firmware.js';
import * as firmwareDetail from './pages/firmware-detail.js';
import * as task from './pages/task.js';
import * as devices from './pages/devices.js';
import * as gateway from './pages/gateway.js';

// [pattern, module, nav key]; a group captures an id (URI-encoded in the hash).
const ROUTES = [
	[/^firmware$/, firmware, 'firmware'],
	[/^firmware\/([^/]+)$/, firmwareDetail, 'firmware'],
	[/^tasks\/([^/]+)$/, task, 'firmware'],
	[/^devices$/, devices, 'devices'],
	[/^gateway$/, gateway, 'gateway'],
];
const NAV = ['firmware', 'devices', 'gateway'];

const main = document.getElementById('main');
const live = new Live(getToken);
let page = null;
let loggedOut = false; // the login form is showing

function renderShell() {
	document.documentElement.lang = lang() === 'zh' ? 'zh-CN' : 'en';
	const navEl = document.getElementById('nav');
	navEl.setAttribute('aria-label', t('nav.label'));
	navEl.replaceChildren(...NAV.map((k) => h('a', { href: '#/' + k, 'data-nav': k, 'data-testid': 'nav-' + k, text: t('nav.' + k) })));
	const other = otherLang();
	const langBtn = document.getElementById('lang');
	langBtn.textContent = t('lang.' + other);
	langBtn.setAttribute('lang', other === 'zh' ? 'zh-CN' : 'en');
	langBtn.setAttribute('aria-label', t('lang.switch'));
	document.getElementById('logout').textContent = t('logout');
	document.getElementById('skip').textContent = t('skip');
	showLive(live.state);
	markNav();
}

function showLive(state) {
	const el = document.getElementById('live');
	el.dataset.state = state;
	el.textContent = t('live.' + state);
	el.title = t('live.hint.' + state);
}

function markNav(key) {
	for (const a of document.querySelectorAll('#nav a')) {
		if (a.dataset.nav === key) a.setAttribute('aria-current', 'page');
		else a.removeAttribute('aria-current');
	}
}

function showVersion(health) {
	document.getElementById('version').textContent = (health && health.version) || '';
}

function title(s) {
	document.title = `${s} · otagw`;
}

const ctx = { error: (e) => showError(e), title };

function route(focus = false) {
	if (loggedOut) return;
	const path = decodeURIComponent(location.hash.replace(/^#\/?/, '')) || 'firmware';
	let hit = null;
	for (const [re, mod, nav] of ROUTES) {
		const m = path.match(re);
		if (m) {
			hit = { mod, nav, params: m.slice(1) };
			break;
		}
	}
	dispose();
	clearError();
	main.replaceChildren();
	if (!hit) {
		title(t('notFound'));
		main.append(h('h1', { text: t('notFound') }), h('p', {}, h('a', { href: '#/firmware', text: t('nav.firmware') })));
		return;
	}
	markNav(hit.nav);
	title(t('nav.' + hit.nav));
	page = hit.mod.mount(main, hit.params, ctx);
	// Moving focus to the new heading tells screen readers the page changed.
	if (focus) main.querySelector('h1')?.focus();
}

function dispose() {
	if (page && page.dispose) page.dispose();
	page = null;
}

// ---- login ----

function showLogin(message) {
	loggedOut = true;
	live.stop();
	dispose();
	for (const d of document.querySelectorAll('dialog')) d.close();
	clearError();
	document.body.classList.add('logged-out');
	const input = h('input', { type: 'password', id: 'login-token', name: 'token', autocomplete: 'current-password', required: true, 'data-testid': 'login-token' });
	const err = h('p', { class: 'error', role: 'alert', 'data-testid': 'login-error', text: message || '' });
	const btn = h('button', { type: 'submit', class: 'primary', 'data-testid': 'login-submit', text: t('login.submit') });
	const form = h('form', { class: 'login card-panel', 'data-testid': 'login-form' },
		h('h1', { text: t('login.title') }), h('p', { text: t('login.intro') }),
		h('div', { class: 'field' }, h('label', { for: 'login-token', text: t('login.token') }), input), err, btn);
	form.onsubmit = async (ev) => {
		ev.preventDefault();
		btn.disabled = true;
		err.textContent = '';
		setToken(input.value.trim());
		try {
			showVersion(await get('health', { quiet401: true }));
			loggedIn();
		} catch (e) {
			setToken('');
			err.textContent = e.status === 401 ? t('login.wrong') : errorText(e);
			input.select();
		} finally {
			btn.disabled = false;
		}
	};
	title(t('login.title'));
	main.replaceChildren(form);
	input.focus();
}

function loggedIn() {
	loggedOut = false;
	document.body.classList.remove('logged-out');
	document.getElementById('logout').hidden = !getToken();
	live.start();
	route();
}

async function logout() {
	setToken('');
	document.getElementById('logout').hidden = true;
	live.stop();
	try {
		await get('health', { quiet401: true });
		route(); // this gateway needs no token
	} catch (e) {
		if (e.status === 401) showLogin(t('login.bye'));
		else showError(e);
	}
}

// ---- wiring ----

events.addEventListener('unauthorized', () => {
	if (!loggedOut) showLogin(getToken() ? t('login.expired') : '');
});
live.addEventListener('unauthorized', () => {
	if (!loggedOut) showLogin(t('login.expired'));
});
live.addEventListener('state', (e) => showLive(e.detail));
live.addEventListener('hello', () => page && page.refresh());
live.addEventListener('frame', (e) => {
	if (!page) return;
	if (e.detail.type === 'resync') page.refresh();
	else page.onFrame(e.detail);
});
window.addEventListener('hashchange', () => route(true));
document.getElementById('lang').addEventListener('click', () => {
	setLang(otherLang());
	renderShell();
	if (!loggedOut) route();
	else showLogin();
});
document.getElementById('logout').addEventListener('click', logout);
// The skip link must not touch the hash: it is the router's.
document.getElementById('skip').addEventListener('click', (ev) => {
	ev.preventDefault();
	main.focus();
});

async function boot() {
	renderShell();
	try {
		showVersion(await get('health', { quiet401: true }));
		loggedIn();
	} catch (e) {
		if (e.status === 401) showLogin(getToken() ? t('login.expired') : '');
		else {
			showError(e);
			loggedIn(); // the pages show their own errors; the live feed retries
		}
	}
}
boot();
