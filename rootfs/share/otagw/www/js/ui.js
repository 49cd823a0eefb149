// SPDX-License-Identifier: MIT
// ui.js - small DOM helpers shared by every page: an element builder, the
// progress bar, dialogs (native <dialog>: focus trap and Esc for free), the
// error banner and number/time formatting. No page logic here.
import { t, lang } from './i18n.js';

// h('button', {class: 'x', onclick: fn, 'data-testid': 'y'}, 'text', child...)
// Attributes: on* take functions, `text` sets textContent, true/false toggle
// boolean attributes, null/undefined are skipped. Children may be strings,
// nodes, arrays or null.
export function h(tag, attrs = {}, ...children) {
	const el = document.createElement(tag);
	for (const [k, v] of Object.entries(attrs || {})) {
		if (v === null || v === undefined || v === false) continue;
		if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
		else if (k === 'text') el.textContent = v;
		else if (k === 'value') el.value = v;
		else if (k === 'checked') el.checked = !!v;
		else el.setAttribute(k, v === true ? '' : String(v));
	}
	append(el, children);
	return el;
}

function append(el, children) {
	for (const c of children) {
		if (c === null || c === undefined || c === false) continue;
		if (Array.isArray(c)) append(el, c);
		else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
	}
}

// A determinate progress bar; aria-valuenow is what tests and screen readers read.
export function progressBar(value, testid) {
	const bar = h('div', { class: 'bar' });
	const el = h('div', {
		class: 'progress', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100,
		'data-testid': testid,
	}, bar);
	setProgress(el, value);
	return el;
}

export function setProgress(el, value) {
	const v = Math.max(0, Math.min(100, Math.round(Number(value) || 0)));
	el.setAttribute('aria-valuenow', v);
	el.setAttribute('aria-valuetext', v + ' %');
	el.firstChild.style.width = v + '%';
}

export function fmtBytes(n) {
	if (n === undefined || n === null || n === '') return '—';
	n = Number(n);
	const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
	let i = 0;
	while (n >= 1024 && i < units.length - 1) {
		n /= 1024;
		i++;
	}
	return (i ? n.toFixed(n < 10 ? 2 : 1) : String(n)) + ' ' + units[i];
}

// Milliseconds since the epoch -> local date and time; 0 means "never".
export function fmtTime(ms) {
	if (!ms) return '—';
	return new Date(ms).toLocaleString(lang() === 'zh' ? 'zh-CN' : 'en-GB');
}

export function fmtAgo(ms) {
	if (!ms) return t('never');
	const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
	if (s < 60) return t('ago.s', { n: s });
	if (s < 3600) return t('ago.m', { n: Math.floor(s / 60) });
	if (s < 86400) return t('ago.h', { n: Math.floor(s / 3600) });
	return fmtTime(ms);
}

// ---- error banner (errors that belong to no dialog) ----

export function showError(err) {
	const b = document.getElementById('banner');
	b.replaceChildren(h('span', { text: errorText(err) }),
		h('button', { class: 'link', type: 'button', onclick: clearError, text: t('dismiss') }));
	b.hidden = false;
}

export function clearError() {
	const b = document.getElementById('banner');
	b.hidden = true;
	b.replaceChildren();
}

// An ApiError carries the API's {"error": ...} text; anything else is a bug
// or the network, shown as is.
export function errorText(err) {
	if (err && err.status) return t('err.http', { status: err.status, msg: err.message });
	return (err && err.message) || String(err);
}

// ---- dialogs ----

// Opens a modal <dialog> with a title, a body and footer buttons; resolves
// when it closes. Returns {el, close, done}. The dialog removes itself.
export function openDialog({ title, body, actions = [], testid, wide = false }) {
	const heading = h('h2', { id: 'dlg-title-' + ++dialogSeq, text: title });
	const dlg = h('dialog', {
		class: wide ? 'wide' : null, 'aria-labelledby': heading.id, 'data-testid': testid,
	}, heading, body, actions.length ? h('div', { class: 'actions' }, actions) : null);
	let resolve;
	const done = new Promise((r) => (resolve = r));
	dlg.addEventListener('close', () => {
		dlg.remove();
		resolve(dlg.returnValue);
	});
	document.body.append(dlg);
	dlg.showModal();
	return { el: dlg, close: (v = '') => dlg.close(v), done };
}
let dialogSeq = 0;

// Yes/no question; resolves true on confirm.
export async function confirmDialog(text, okLabel, testid = 'confirm-dialog') {
	const ok = h('button', { class: 'danger', type: 'button', 'data-testid': 'confirm-ok', text: okLabel });
	const no = h('button', { type: 'button', 'data-testid': 'confirm-cancel', text: t('cancel') });
	const d = openDialog({ title: t('confirm'), body: h('p', { text }), actions: [no, ok], testid });
	ok.onclick = () => d.close('ok');
	no.onclick = () => d.close('');
	no.focus();
	return (await d.done) === 'ok';
}

// A labelled form field: label + input/select/textarea, tied by id.
export function field(label, input, hint) {
	if (!input.id) input.id = 'f-' + ++fieldSeq;
	return h('div', { class: 'field' }, h('label', { for: input.id, text: label }), input,
		hint ? h('small', { text: hint }) : null);
}
let fieldSeq = 0;

// Runs an async action for a form: disables the submit button meanwhile and
// shows a failure in the form's error line (role=alert, read out at once).
export async function busy(button, errLine, fn) {
	button.disabled = true;
	errLine.textContent = '';
	try {
		return await fn();
	} catch (e) {
		errLine.textContent = errorText(e);
		return undefined;
	} finally {
		button.disabled = false;
	}
}

export function errorLine(testid = 'form-error') {
	return h('p', { class: 'error', role: 'alert', 'data-testid': testid });
}

// State badge of a record/task/image/device; css colours it by data-state.
export function badge(state, text, testid) {
	return h('span', { class: 'badge', 'data-state': state, 'data-testid': testid, text });
}

export function pageHeader(title, ...tools) {
	return h('div', { class: 'page-head' }, h('h1', { tabindex: -1, text: title }),
		h('div', { class: 'tools' }, tools));
}

// A bare table: head labels, then rows (arrays of cells or <tr> nodes).
export function table(heads, rows, testid, emptyText) {
	const body = h('tbody', {}, rows);
	if (!rows.length)
		body.append(h('tr', {}, h('td', { class: 'empty', colspan: heads.length, text: emptyText || t('none') })));
	return h('table', { 'data-testid': testid },
		h('thead', {}, h('tr', {}, heads.map((x) => h('th', { scope: 'col', text: x })))), body);
}
