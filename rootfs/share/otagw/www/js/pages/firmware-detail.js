// SPDX-License-Identifier: MIT
// pages/firmware-detail.js - one firmware (#/firmware/{id}) with its upgrade
// tasks, as in the seed's flow: create a task, publish it to all devices of
// the product or to devices picked from a list, cancel it, open its board.
// The task dialogs are exported for the board page.
import { api, get, getAll, enc } from '../api.js';
import { t } from '../i18n.js';
import {
	h, field, busy, errorLine, badge, openDialog, confirmDialog, fmtBytes, fmtTime, pageHeader,
	table, showError,
} from '../ui.js';
import { imageBadge, firmwareDialog, uploadDialog, deleteFirmware } from './firmware.js';

export const STATES = ['waiting', 'processing', 'success', 'failed', 'canceled'];

// "3 waiting · 1 processing · ..." with the zero counts left out.
export function countsLine(counts) {
	const parts = STATES.filter((s) => counts && counts[s]).map((s) =>
		badge(s, `${counts[s]} ${t('state.' + s)}`, 'count-' + s));
	return parts.length ? parts : [h('span', { class: 'muted', text: t('task.noDevices') })];
}

function taskDialog(fw) {
	const err = errorLine();
	const name = h('input', { name: 'name', required: true, maxlength: 128, 'data-testid': 'task-name' });
	const mode = h('select', { name: 'mode', 'data-testid': 'task-mode' },
		h('option', { value: 'push', text: t('mode.push') }), h('option', { value: 'pull', text: t('mode.pull') }));
	const timeout = h('input', { name: 'timeout', type: 'number', min: 0, value: '0', 'data-testid': 'task-timeout' });
	const desc = h('textarea', { name: 'description', rows: 2, 'data-testid': 'task-description' });
	const save = h('button', { type: 'submit', class: 'primary', form: 'task-form', 'data-testid': 'task-save', text: t('save') });
	const form = h('form', { id: 'task-form', class: 'grid-form' },
		field(t('task.name'), name), field(t('task.mode'), mode, t('task.modeHint')),
		field(t('task.timeout'), timeout, t('task.timeoutHint')), field(t('fw.description'), desc), err);
	const d = openDialog({
		title: t('task.new'), body: form, testid: 'task-dialog',
		actions: [h('button', { type: 'button', text: t('cancel'), onclick: () => d.close() }), save],
	});
	let created;
	form.onsubmit = async (ev) => {
		ev.preventDefault();
		await busy(save, err, async () => {
			const body = { name: name.value.trim(), mode: mode.value, timeoutSeconds: Number(timeout.value || 0) };
			if (desc.value.trim()) body.description = desc.value.trim();
			created = await api('POST', `firmware/${enc(fw.id)}/tasks`, body);
			d.close('ok');
		});
	};
	name.focus();
	return d.done.then(() => created);
}

// Publish: every device of the product, or the ones ticked in the list.
export async function publishDialog(task) {
	const err = errorLine();
	const list = h('div', { class: 'pick-list', 'data-testid': 'pick-list', role: 'group', 'aria-label': t('pub.pick') },
		h('p', { class: 'muted', text: t('loading') }));
	const filter = h('input', { type: 'search', 'data-testid': 'pick-filter', placeholder: t('pub.filter'), 'aria-label': t('pub.filter') });
	const radio = (value, label) => h('label', { class: 'radio' },
		h('input', { type: 'radio', name: 'target', value, checked: value === 'some', 'data-testid': 'pub-' + value }), label);
	const result = h('p', { 'data-testid': 'publish-result', 'aria-live': 'polite' });
	const send = h('button', { type: 'submit', class: 'primary', form: 'pub-form', 'data-testid': 'publish-submit', text: t('pub.submit') });
	const form = h('form', { id: 'pub-form' },
		h('fieldset', {}, h('legend', { text: t('pub.target') }),
			radio('all', t('pub.all', { product: task.productId })), radio('some', t('pub.some'))),
		filter, list, result, err);
	const d = openDialog({
		title: t('pub.title', { name: task.name }), body: form, wide: true, testid: 'publish-dialog',
		actions: [h('button', { type: 'button', 'data-testid': 'publish-close', text: t('close'), onclick: () => d.close() }), send],
	});
	const sync = () => list.classList.toggle('disabled', form.elements.target.value === 'all');
	form.onchange = sync;
	filter.oninput = () => {
		const q = filter.value.trim().toLowerCase();
		for (const row of list.querySelectorAll('label'))
			row.hidden = q && !row.dataset.search.includes(q);
	};
	let published = false;
	form.onsubmit = async (ev) => {
		ev.preventDefault();
		const all = form.elements.target.value === 'all';
		const ids = [...list.querySelectorAll('input:checked')].map((c) => c.value);
		if (!all && !ids.length) {
			err.textContent = t('pub.none');
			return;
		}
		const r = await busy(send, err, () => api('POST', `tasks/${enc(task.id)}/publish`, all ? { all: true } : { deviceIds: ids }));
		if (r) {
			published = true;
			result.textContent = t('pub.result', r);
		}
	};
	try {
		const devs = await getAll('devices?productId=' + enc(task.productId));
		list.replaceChildren(...devs.map((dv) => h('label', {
			class: 'pick', 'data-search': `${dv.id} ${dv.name}`.toLowerCase(),
		}, h('input', { type: 'checkbox', value: dv.id, 'data-testid': 'pick-' + dv.id }),
		h('span', { class: 'dev-id', text: dv.id }), dv.name ? h('span', { class: 'muted', text: dv.name }) : null,
		h('span', { text: dv.firmwareVersion || '—' }),
		badge(dv.online ? 'online' : 'offline', t(dv.online ? 'dev.online' : 'dev.offline')))));
		if (!devs.length) list.replaceChildren(h('p', { class: 'muted', text: t('pub.noDevices', { product: task.productId }) }));
	} catch (e) {
		list.replaceChildren(h('p', { class: 'error', text: e.message }));
	}
	sync();
	await d.done;
	return published;
}

export async function cancelTask(task) {
	if (!(await confirmDialog(t('task.confirmCancel', { name: task.name }), t('task.cancel')))) return false;
	try {
		await api('POST', `tasks/${enc(task.id)}/cancel`);
		return true;
	} catch (e) {
		showError(e);
		return false;
	}
}

// Buttons of a task (on this page's rows and on the board).
export function taskActions(task, after) {
	const cloud = task.origin === 'cloud';
	const done = task.state === 'canceled';
	return [
		h('button', {
			type: 'button', class: 'small', 'data-testid': 'task-publish', text: t('task.publish'),
			disabled: done || cloud, onclick: async () => (await publishDialog(task)) && after(),
		}),
		h('button', {
			type: 'button', class: 'small danger', 'data-testid': 'task-cancel', text: t('task.cancel'),
			disabled: done || cloud, onclick: async () => (await cancelTask(task)) && after(),
		}),
	];
}

export function mount(root, params, ctx) {
	const id = params[0];
	const head = h('div');
	const info = h('div', { class: 'card-panel', 'data-testid': 'fw-detail' });
	const tasks = h('div', { 'data-testid': 'task-list' });
	root.append(head, info, h('div', { class: 'page-head' }, h('h2', { text: t('task.title') }),
		h('div', { class: 'tools' }, h('button', {
			class: 'primary', 'data-testid': 'task-new', text: t('task.new'),
			onclick: async () => fw && (await taskDialog(fw)) && refresh(),
		}))), tasks);
	let fw = null;
	const rows = new Map(); // task id -> <tr>, for live count updates

	function taskRow(task) {
		const cells = {
			state: h('td', {}, badge(task.state, t('tstate.' + task.state), 'task-state')),
			counts: h('td', { class: 'counts' }, countsLine(task.counts)),
			actions: h('td', { class: 'row-actions' }, taskActions(task, refresh)),
		};
		const tr = h('tr', { 'data-testid': 'task-row-' + task.id, 'data-id': task.id },
			h('td', {}, h('a', { href: '#/tasks/' + enc(task.id), 'data-testid': 'task-open', text: task.name })),
			h('td', { text: t('mode.' + task.mode) }), cells.state, cells.counts,
			h('td', { text: fmtTime(task.createTime) }), cells.actions);
		rows.set(task.id, { task, cells });
		return tr;
	}

	function renderInfo() {
		const cloud = fw.origin === 'cloud';
		const dl = [
			[t('fw.id'), fw.id], [t('fw.product'), fw.productId], [t('fw.version'), fw.version],
			[t('fw.order'), fw.versionOrder], [t('fw.size'), fw.size ? `${fmtBytes(fw.size)} (${fw.size} B)` : '—'],
			[t('fw.url'), fw.url || '—'], [t('fw.signMethod'), fw.signMethod || '—'],
			[t('fw.sign'), h('code', { class: 'hash', text: fw.sign || '—' })],
			[t('fw.description'), fw.description || '—'], [t('fw.updated'), fmtTime(fw.updateTime)],
			[t('fw.image'), [imageBadge(fw.image), ' ', fw.image && fw.image.sha256 ?
				h('code', { class: 'hash', 'data-testid': 'image-sha256', text: fw.image.sha256 }) : null,
				fw.image && fw.image.reason ? h('span', { class: 'muted', text: ' ' + fw.image.reason }) : null]],
		];
		head.replaceChildren(h('nav', { class: 'crumbs', 'aria-label': t('crumbs') },
			h('a', { href: '#/firmware', text: t('nav.firmware') }), ' / ', fw.name),
		pageHeader(`${fw.name} ${fw.version}`,
			cloud ? badge('cloud', t('origin.cloud')) : null,
			h('button', { 'data-testid': 'fw-upload', text: t('upload.short'), disabled: cloud, onclick: async () => {
				await uploadDialog(fw);
				refresh();
			} }),
			h('button', { 'data-testid': 'fw-edit', text: t('edit'), disabled: cloud, onclick: async () => (await firmwareDialog(fw)) && refresh() }),
			h('button', { class: 'danger', 'data-testid': 'fw-delete', text: t('delete'), disabled: cloud, onclick: async () => {
				if (await deleteFirmware(fw)) location.hash = '#/firmware';
			} })));
		info.replaceChildren(h('dl', { class: 'props' }, dl.map(([k, v]) => [h('dt', { text: k }), h('dd', {}, v)])));
	}

	async function refresh() {
		try {
			fw = await get('firmware/' + enc(id));
			const list = await getAll(`firmware/${enc(id)}/tasks`);
			renderInfo();
			ctx.title(`${fw.name} ${fw.version}`);
			rows.clear();
			tasks.replaceChildren(table(
				[t('task.name'), t('task.mode'), t('task.state'), t('task.progress'), t('task.created'), t('actions')],
				list.map(taskRow), 'task-table', t('task.empty')));
		} catch (e) {
			ctx.error(e);
		}
	}

	// A tasks frame carries whole tasks with their counts: update that row's
	// cells in place (the buttons keep their focus unless the state changed).
	function onFrame(f) {
		if (f.type !== 'tasks') return;
		for (const task of f.items || []) {
			const row = rows.get(task.id);
			if (!row) continue;
			row.cells.counts.replaceChildren(...countsLine(task.counts));
			if (task.state !== row.task.state) {
				row.cells.state.replaceChildren(badge(task.state, t('tstate.' + task.state), 'task-state'));
				row.cells.actions.replaceChildren(...taskActions(task, refresh));
			}
			row.task = task;
		}
	}
	refresh();
	return { refresh, onFrame };
}
