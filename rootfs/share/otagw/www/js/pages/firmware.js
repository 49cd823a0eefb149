// SPDX-License-Identifier: MIT
// pages/firmware.js - the firmware list (#/firmware), and the firmware
// dialogs the detail page reuses: create/edit form, image upload with a
// progress bar, delete with confirmation, and the image state badge.
import { api, getAll, upload, enc } from '../api.js';
import { t } from '../i18n.js';
import {
	h, field, busy, errorLine, badge, openDialog, confirmDialog, progressBar, setProgress,
	fmtBytes, pageHeader, table, showError,
} from '../ui.js';

// The image of a firmware as a badge: none, downloading (bytes/total),
// ready ("cached"), failed (reason), missing.
export function imageBadge(img) {
	const st = (img && img.state) || 'none';
	let text = t('image.' + st);
	if (st === 'downloading' && img.total) text += ` ${Math.floor((img.bytes * 100) / img.total)} %`;
	const b = badge(st, text, 'image-state');
	if (img && img.reason) b.title = img.reason;
	return b;
}

// Fields of the form: [key, label key, kind]; kind 'n' = number, 'json' =
// an object typed as JSON text.
const FIELDS = [
	['productId', 'fw.product', 'id'], ['name', 'fw.name'], ['version', 'fw.version'],
	['versionOrder', 'fw.order', 'n'], ['url', 'fw.url'], ['size', 'fw.size', 'n'],
	['signMethod', 'fw.signMethod', 'sel'], ['sign', 'fw.sign'],
	['description', 'fw.description', 'area'], ['properties', 'fw.properties', 'json'],
];

function input(key, kind, fw) {
	const attrs = { name: key, id: 'fw-' + key, 'data-testid': 'fw-' + key };
	const v = fw ? fw[key] : undefined;
	if (kind === 'sel') {
		return h('select', attrs, ['', 'md5', 'sha256', 'ecdsa-p256'].map((m) =>
			h('option', { value: m, selected: (v || '') === m, text: m || t('fw.noSign') })));
	}
	if (kind === 'area' || kind === 'json') {
		const text = kind === 'json' ? (v && Object.keys(v).length ? JSON.stringify(v) : '') : v || '';
		return h('textarea', { ...attrs, rows: 2, value: text });
	}
	return h('input', {
		...attrs, type: kind === 'n' ? 'number' : 'text', min: kind === 'n' ? 0 : null,
		value: v === undefined ? '' : String(v),
		required: ['productId', 'name', 'version'].includes(key),
	});
}

// Reads the form into a body: on create, empty optional fields are left
// out; on edit, only the fields that changed are sent ("change the fields
// given").
function formBody(form, fw) {
	const body = {};
	for (const [key, , kind] of [['id', '', 'id'], ...FIELDS]) {
		const el = form.elements[key];
		if (!el) continue;
		let v = el.value.trim();
		if (kind === 'n') v = v === '' ? undefined : Number(v);
		if (kind === 'json') {
			try {
				v = v === '' ? {} : JSON.parse(v);
			} catch {
				throw new Error(t('fw.badJson'));
			}
		}
		if (!fw) {
			if (v !== undefined && v !== '' && !(kind === 'json' && !Object.keys(v).length)) body[key] = v;
		} else if (JSON.stringify(v ?? '') !== JSON.stringify(fw[key] ?? '')) {
			body[key] = v === undefined ? 0 : v;
		}
	}
	return body;
}

// Create (fw undefined) or edit a firmware; resolves with the saved one or undefined.
export function firmwareDialog(fw) {
	const err = errorLine();
	// The buttons sit in the dialog's footer, outside the form: form= ties them.
	const save = h('button', { type: 'submit', class: 'primary', form: 'fw-form', 'data-testid': 'fw-save', text: t('save') });
	const form = h('form', { id: 'fw-form', class: 'grid-form' },
		fw ? null : field(t('fw.id'), h('input', { name: 'id', id: 'fw-id', 'data-testid': 'fw-id', pattern: '[A-Za-z0-9_.:-]{1,64}' }), t('fw.idHint')),
		FIELDS.map(([key, label, kind]) => field(t(label), input(key, kind, fw))),
		err);
	const cancel = h('button', { type: 'button', text: t('cancel'), onclick: () => d.close() });
	const d = openDialog({
		title: fw ? t('fw.edit') : t('fw.new'), body: form, actions: [cancel, save],
		testid: 'fw-dialog', wide: true,
	});
	let saved;
	form.onsubmit = async (ev) => {
		ev.preventDefault();
		await busy(save, err, async () => {
			const body = formBody(form, fw);
			if (fw && !Object.keys(body).length) return d.close();
			saved = fw ? await api('PUT', 'firmware/' + enc(fw.id), body) : await api('POST', 'firmware', body);
			d.close('ok');
		});
	};
	form.elements[fw ? 'name' : 'id'].focus();
	return d.done.then(() => saved);
}

// Upload dialog: pick the image file, watch the bar, see the cached state.
export function uploadDialog(fw) {
	const file = h('input', { type: 'file', id: 'upload-file', 'data-testid': 'upload-file', required: true });
	const bar = progressBar(0, 'upload-progress');
	const status = h('p', { 'data-testid': 'upload-status', 'aria-live': 'polite' });
	const err = errorLine('upload-error');
	const start = h('button', { type: 'submit', class: 'primary', form: 'upload-form', 'data-testid': 'upload-start', text: t('upload.start') });
	const close = h('button', { type: 'button', 'data-testid': 'upload-close', text: t('close'), onclick: () => d.close() });
	const form = h('form', { id: 'upload-form' },
		h('p', { text: t('upload.intro', { name: fw.name, version: fw.version }) }),
		fw.size ? h('p', { class: 'muted', text: t('upload.expect', { size: fmtBytes(fw.size), method: fw.signMethod || '—' }) }) : null,
		field(t('upload.file'), file), bar, status, err);
	const d = openDialog({ title: t('upload.title'), body: form, actions: [close, start], testid: 'upload-dialog' });
	form.onsubmit = async (ev) => {
		ev.preventDefault();
		if (!file.files.length) {
			err.textContent = t('upload.pick');
			return;
		}
		setProgress(bar, 0);
		status.textContent = t('upload.sending', { size: fmtBytes(file.files[0].size) });
		const r = await busy(start, err, () =>
			upload(`firmware/${enc(fw.id)}/image`, file.files[0], (p) => setProgress(bar, p)));
		if (!r) {
			status.textContent = '';
			return;
		}
		status.replaceChildren(imageBadge(r.image), ' ',
			h('code', { class: 'hash', 'data-testid': 'upload-sha256', text: (r.image && r.image.sha256) || '' }));
		close.focus();
	};
	return d.done;
}

// Confirms, deletes; resolves true when it is gone.
export async function deleteFirmware(fw) {
	if (!(await confirmDialog(t('fw.confirmDelete', { name: fw.name, version: fw.version }), t('delete'))))
		return false;
	try {
		await api('DELETE', 'firmware/' + enc(fw.id));
		return true;
	} catch (e) {
		showError(e);
		return false;
	}
}

// ---- the list page ----

export function mount(root, _params, ctx) {
	const body = h('div', { 'data-testid': 'fw-list' });
	const create = h('button', {
		class: 'primary', 'data-testid': 'fw-new', text: t('fw.new'),
		onclick: async () => (await firmwareDialog()) && refresh(),
	});
	root.append(pageHeader(t('nav.firmware'), create), body);
	let last = '';

	function row(fw) {
		const cloud = fw.origin === 'cloud';
		const act = (label, testid, fn, extra = {}) =>
			h('button', { type: 'button', class: 'small', 'data-testid': testid, text: label, onclick: fn, ...extra });
		return h('tr', { 'data-testid': 'fw-row-' + fw.id, 'data-id': fw.id },
			h('td', {}, h('a', { href: '#/firmware/' + enc(fw.id), 'data-testid': 'fw-open', text: fw.name }),
				cloud ? badge('cloud', t('origin.cloud')) : null),
			h('td', { text: fw.productId }),
			h('td', { 'data-testid': 'fw-version', text: fw.version }),
			h('td', { class: 'num', text: fw.versionOrder }),
			h('td', { class: 'num', text: fw.size ? fmtBytes(fw.size) : '—' }),
			h('td', {}, imageBadge(fw.image)),
			h('td', { class: 'row-actions' },
				act(t('upload.short'), 'fw-upload', async () => {
					await uploadDialog(fw);
					refresh();
				}, { disabled: cloud, title: cloud ? t('origin.cloudHint') : null }),
				act(t('edit'), 'fw-edit', async () => (await firmwareDialog(fw)) && refresh(), { disabled: cloud }),
				act(t('delete'), 'fw-delete', async () => (await deleteFirmware(fw)) && refresh(),
					{ class: 'small danger', disabled: cloud })));
	}

	async function refresh() {
		try {
			const items = await getAll('firmware');
			const json = JSON.stringify(items);
			if (json === last) return; // nothing changed: keep focus and selection
			last = json;
			body.replaceChildren(table(
				[t('fw.name'), t('fw.product'), t('fw.version'), t('fw.order'), t('fw.size'), t('fw.image'), t('actions')],
				items.map(row), 'fw-table', t('fw.empty')));
		} catch (e) {
			ctx.error(e);
		}
	}
	refresh();
	return { refresh, onFrame() {} };
}
