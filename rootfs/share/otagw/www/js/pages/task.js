// SPDX-License-Identifier: MIT
// pages/task.js - a task's board (#/tasks/{id}): one column per record
// state, one card per device with its progress bar. Live 'records' frames
// update cards in place: the same DOM node moves between columns, so focus
// and an open history stay put. A click on a card shows the device's history
// for this task.
import { api, get, getAll, enc } from '../api.js';
import { t } from '../i18n.js';
import { h, badge, openDialog, progressBar, setProgress, fmtTime, pageHeader, table } from '../ui.js';
import { STATES, countsLine, taskActions } from './firmware-detail.js';

export function mount(root, params, ctx) {
	const id = params[0];
	const head = h('div');
	const summary = h('div', { class: 'counts', 'data-testid': 'task-counts' });
	const cols = {};
	const board = h('div', { class: 'board', 'data-testid': 'board' }, STATES.map((s) => {
		const list = h('ul', { class: 'cards', 'aria-label': t('state.' + s) });
		const count = h('span', { class: 'count', 'data-testid': 'col-count-' + s, text: '0' });
		cols[s] = { list, count };
		return h('section', { class: 'col', 'data-state': s, 'data-testid': 'col-' + s },
			h('h2', {}, t('state.' + s), ' ', count), list);
	}));
	root.append(head, summary, board);
	const cards = new Map(); // deviceId -> {li, rec}
	let task = null;
	let fwName = '';

	function cardBody(rec) {
		const bar = progressBar(rec.progress, 'card-progress');
		return [
			h('span', { class: 'dev-id', text: rec.deviceId }),
			h('span', { class: 'pct', 'data-testid': 'card-pct', text: rec.progress + ' %' }),
			bar,
			h('span', { class: 'reason', 'data-testid': 'card-reason', text: rec.errorReason || '' }),
			h('span', { class: 'muted time', text: fmtTime(rec.updateTime) }),
		];
	}

	// Creates or updates the card of rec; moves it when its state changed.
	function upsert(rec) {
		if (!STATES.includes(rec.state)) return;
		let c = cards.get(rec.deviceId);
		if (!c) {
			const btn = h('button', {
				type: 'button', class: 'card', 'data-testid': 'card-' + rec.deviceId, 'data-dev': rec.deviceId,
				onclick: () => history(cards.get(rec.deviceId).rec),
			});
			c = { li: h('li', {}, btn), btn, rec };
			cards.set(rec.deviceId, c);
			c.btn.append(...cardBody(rec));
		} else {
			// Frames may arrive out of order with a REST reload: never go back.
			if (rec.updateTime < c.rec.updateTime) return;
			setProgress(c.btn.querySelector('[role=progressbar]'), rec.progress);
			c.btn.querySelector('.pct').textContent = rec.progress + ' %';
			c.btn.querySelector('.reason').textContent = rec.errorReason || '';
			c.btn.querySelector('.time').textContent = fmtTime(rec.updateTime);
		}
		c.rec = rec;
		c.btn.dataset.state = rec.state;
		c.btn.dataset.progress = rec.progress;
		c.btn.setAttribute('aria-label', t('card.label', { id: rec.deviceId, state: t('state.' + rec.state), pct: rec.progress }));
		if (c.li.parentNode !== cols[rec.state].list) place(c.li, rec.deviceId, cols[rec.state].list);
	}

	// Keeps each column sorted by device id (stable positions to scan).
	function place(li, devId, list) {
		for (const other of list.children) {
			if (other.firstChild.dataset.dev > devId) {
				list.insertBefore(li, other);
				return;
			}
		}
		list.append(li);
	}

	function recount() {
		for (const s of STATES) cols[s].count.textContent = cols[s].list.children.length;
	}

	function renderHead() {
		ctx.title(task.name);
		head.replaceChildren(
			h('nav', { class: 'crumbs', 'aria-label': t('crumbs') },
				h('a', { href: '#/firmware', text: t('nav.firmware') }), ' / ',
				h('a', { href: '#/firmware/' + enc(task.firmwareId), text: fwName || task.firmwareId }), ' / ', task.name),
			pageHeader(task.name, badge(task.state, t('tstate.' + task.state), 'task-state'),
				h('span', { class: 'muted', text: t('mode.' + task.mode) }), taskActions(task, refresh)));
		renderSummary();
	}

	function renderSummary() {
		summary.replaceChildren(...countsLine(task.counts),
			h('span', { class: 'muted', text: ' ' + t('task.total', { n: task.counts ? task.counts.total : 0 }) }),
			...rolloutLine());
	}

	// The rollout (issue 13): wave, slots, why it waits or paused; pause/resume.
	function rolloutLine() {
		const rs = task.rolloutStatus;
		if (!rs) return [];
		const parts = [t('ro.wave', { w: rs.wave, n: rs.waves })];
		if (rs.maxConcurrent) parts.push(t('ro.slots', { busy: rs.slotsInUse, max: rs.maxConcurrent }));
		if (task.paused) parts.push(t('ro.paused', { why: task.pauseReason }));
		else if (rs.hold) parts.push(t('ro.hold', { why: rs.hold }));
		const act = async (what) => {
			try {
				task = await api('POST', `tasks/${enc(id)}/${what}`);
				renderHead();
			} catch (e) {
				ctx.error(e);
			}
		};
		const btn = task.state === 'published' && h('button', {
			type: 'button', 'data-testid': task.paused ? 'task-resume' : 'task-pause',
			text: t(task.paused ? 'ro.resume' : 'ro.pause'), onclick: () => act(task.paused ? 'resume' : 'pause'),
		});
		return [h('span', { class: task.paused ? 'rollout paused' : 'rollout', 'data-testid': 'task-rollout',
			text: ' · ' + parts.join(' · ') + ' ' }), ...(btn ? [btn] : [])];
	}

	async function refresh() {
		try {
			const [tk, recs] = await Promise.all([get('tasks/' + enc(id)), getAll(`tasks/${enc(id)}/records`)]);
			task = tk;
			if (!fwName) {
				const fw = await get('firmware/' + enc(task.firmwareId)).catch(() => null);
				fwName = fw ? `${fw.name} ${fw.version}` : task.firmwareId;
			}
			renderHead();
			const seen = new Set(recs.map((r) => r.deviceId));
			for (const [dev, c] of cards) {
				if (!seen.has(dev)) {
					c.li.remove();
					cards.delete(dev);
				}
			}
			for (const r of recs) upsert(r);
			recount();
		} catch (e) {
			ctx.error(e);
		}
	}

	function onFrame(f) {
		if (f.type === 'records') {
			for (const r of f.items || []) if (r.taskId === id) upsert(r);
			recount();
		} else if (f.type === 'tasks') {
			const tk = (f.items || []).find((x) => x.id === id);
			if (tk) {
				// Only the header changes; a redraw would steal focus from its buttons.
				const focused = head.contains(document.activeElement);
				task = tk;
				if (focused) renderSummary();
				else renderHead();
			}
		}
	}

	async function history(rec) {
		const body = h('div', {}, h('p', { class: 'muted', text: t('loading') }));
		openDialog({
			title: t('hist.title', { id: rec.deviceId }), body, wide: true, testid: 'history-dialog',
			actions: [h('button', { type: 'button', 'data-testid': 'history-close', text: t('close'), onclick: (ev) => ev.target.closest('dialog').close() })],
		});
		const facts = h('dl', { class: 'props' },
			[[t('hist.state'), badge(rec.state, t('state.' + rec.state))], [t('hist.progress'), rec.progress + ' %'],
				[t('hist.version'), rec.version], [t('hist.reason'), rec.errorReason || '—'],
				[t('hist.created'), fmtTime(rec.createTime)], [t('hist.started'), fmtTime(rec.upgradeTime)],
				[t('hist.completed'), fmtTime(rec.completeTime)]].map(([k, v]) => [h('dt', { text: k }), h('dd', {}, v)]));
		try {
			const r = await get(`devices/${enc(rec.deviceId)}/history?size=200`);
			const rows = r.items.filter((x) => x.recordId === rec.id).map((x) => h('tr', {},
				h('td', { text: fmtTime(x.time) }),
				h('td', {}, x.from ? badge(x.from, t('state.' + x.from)) : '—', ' → ', badge(x.to, t('state.' + x.to))),
				h('td', { class: 'num', text: x.progress + ' %' }), h('td', { text: x.reason || '' })));
			body.replaceChildren(facts, table([t('hist.time'), t('hist.change'), t('hist.progress'), t('hist.reason')],
				rows, 'history-table', t('hist.empty')));
		} catch (e) {
			body.replaceChildren(facts, h('p', { class: 'error', role: 'alert', text: e.message }));
		}
	}

	refresh();
	return { refresh, onFrame };
}
