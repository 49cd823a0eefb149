// SPDX-License-Identifier: MIT
// pages/devices.js - the devices the gateway knows (#/devices): online state,
// transport, firmware version, last seen. A live 'devices' frame (devices
// came, went or reported a version) reloads the list.
import { getAll } from '../api.js';
import { t } from '../i18n.js';
import { h, badge, fmtAgo, fmtTime, pageHeader, table } from '../ui.js';

export function mount(root, _params, ctx) {
	const filter = h('input', {
		type: 'search', 'data-testid': 'dev-filter', placeholder: t('dev.filter'), 'aria-label': t('dev.filter'),
		oninput: () => render(),
	});
	const body = h('div', { 'data-testid': 'dev-list' });
	const count = h('p', { class: 'muted', 'data-testid': 'dev-count', 'aria-live': 'polite' });
	root.append(pageHeader(t('nav.devices'), filter), count, body);
	let devices = [];
	let last = '';
	let timer = 0;

	function render() {
		const q = filter.value.trim().toLowerCase();
		const shown = devices.filter((d) => !q || `${d.id} ${d.name} ${d.productId}`.toLowerCase().includes(q));
		const online = devices.filter((d) => d.online).length;
		count.textContent = t('dev.count', { n: devices.length, online });
		body.replaceChildren(table(
			[t('dev.id'), t('fw.product'), t('fw.name'), t('dev.version'), t('dev.transport'), t('dev.state'), t('dev.lastSeen')],
			shown.map((d) => h('tr', { 'data-testid': 'dev-row-' + d.id, 'data-id': d.id },
				h('td', { class: 'dev-id', text: d.id }), h('td', { text: d.productId }), h('td', { text: d.name || '' }),
				h('td', { 'data-testid': 'dev-version', text: d.firmwareVersion || '—' }),
				h('td', { 'data-testid': 'dev-transport', text: d.transport || '—' }),
				h('td', {}, badge(d.online ? 'online' : 'offline', t(d.online ? 'dev.online' : 'dev.offline'), 'dev-online')),
				h('td', { title: fmtTime(d.lastSeen), text: fmtAgo(d.lastSeen) }))),
			'dev-table', t('dev.empty')));
	}

	async function refresh() {
		try {
			devices = await getAll('devices');
			const json = JSON.stringify(devices);
			if (json !== last) render();
			last = json;
		} catch (e) {
			ctx.error(e);
		}
	}

	// Many devices connecting at once send many frames: one reload per 500 ms.
	function onFrame(f) {
		if (f.type !== 'devices' || timer) return;
		timer = setTimeout(() => {
			timer = 0;
			refresh();
		}, 500);
	}
	refresh();
	return { refresh, onFrame, dispose: () => clearTimeout(timer) };
}
