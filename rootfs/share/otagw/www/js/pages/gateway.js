// SPDX-License-Identifier: MIT
// pages/gateway.js - the gateway itself (#/gateway): health, image cache
// usage, the cloud link and the serial ports. /api/cloud and /api/serial
// show "not configured" when they are absent (404) or have nothing to show.
import { get, ApiError } from '../api.js';
import { t } from '../i18n.js';
import { h, badge, progressBar, fmtBytes, fmtTime, fmtAgo, pageHeader, table } from '../ui.js';

const props = (pairs) => h('dl', { class: 'props' }, pairs.map(([k, v]) => [h('dt', { text: k }), h('dd', {}, v)]));

// GET that answers null when the resource does not exist on this gateway.
async function optional(path) {
	try {
		return await get(path);
	} catch (e) {
		if (e instanceof ApiError && e.status === 404) return null;
		throw e;
	}
}

function healthPanel(hl) {
	return props([
		[t('gw.status'), badge(hl.status, hl.status, 'health-status')], [t('gw.version'), hl.version],
		[t('gw.database'), hl.database], [t('gw.uptime'), t('gw.seconds', { n: hl.uptimeSeconds })],
		[t('gw.sessions'), String(hl.sessions)],
	]);
}

function cachePanel(c) {
	if (!c) return h('p', { class: 'muted', 'data-testid': 'cache-status', 'data-state': 'not-configured', text: t('gw.notConfigured') });
	const pct = c.maxBytes ? (c.usedBytes * 100) / c.maxBytes : 0;
	return h('div', { 'data-testid': 'cache-status', 'data-state': 'ok' },
		h('p', { 'data-testid': 'cache-usage', text: t('gw.cacheUsage', { used: fmtBytes(c.usedBytes), max: fmtBytes(c.maxBytes), pct: pct.toFixed(1) }) }),
		progressBar(pct, 'cache-bar'),
		props([[t('gw.freeDisk'), fmtBytes(c.freeDiskBytes)], [t('gw.downloads'), String(c.downloads)], [t('gw.images'), String(c.total)]]),
		table([t('gw.sha256'), t('fw.size'), t('gw.lastUsed'), t('gw.pinned'), t('gw.firmware')],
			c.items.map((it) => h('tr', { 'data-testid': 'cache-row-' + it.sha256 },
				h('td', {}, h('code', { class: 'hash', title: it.sha256, text: it.sha256.slice(0, 16) + '…' })),
				h('td', { class: 'num', text: fmtBytes(it.size) }), h('td', { text: fmtAgo(it.lastUsed) }),
				h('td', { text: it.pinned ? t('yes') : t('no') }),
				h('td', {}, (it.firmwareIds || []).map((id) => h('a', { href: '#/firmware/' + encodeURIComponent(id), class: 'tag', text: id }))))),
			'cache-table', t('gw.noImages')));
}

function cloudPanel(c) {
	if (!c || c.state === 'disabled')
		return h('p', { class: 'muted', 'data-testid': 'cloud-status', 'data-state': 'not-configured', text: t('gw.notConfigured') });
	return h('div', { 'data-testid': 'cloud-status', 'data-state': c.state },
		props([
			[t('gw.linkState'), badge(c.state, t('cloud.' + c.state))], [t('gw.url'), c.url], [t('gw.gatewayId'), c.gatewayId],
			[t('gw.lastError'), c.lastError || '—'], [t('gw.outbox'), String(c.outbox ?? '—')],
			[t('gw.lastAck'), String(c.lastAck)], [t('gw.reconnects'), String(c.reconnects)],
			[t('gw.connectedSince'), fmtTime(c.connectedSince)],
		]));
}

function serialPanel(s) {
	if (!s || !s.ports || !s.ports.length)
		return h('p', { class: 'muted', 'data-testid': 'serial-status', 'data-state': 'not-configured', text: t('gw.notConfigured') });
	return h('div', { 'data-testid': 'serial-status', 'data-state': 'ok' }, table(
		[t('gw.port'), t('gw.path'), t('dev.state'), t('gw.device'), t('gw.transfer'), t('gw.lastError'), t('gw.reopens')],
		s.ports.map((p) => h('tr', { 'data-testid': 'serial-row-' + p.name },
			h('td', { text: p.name }), h('td', {}, h('code', { text: p.path })),
			h('td', {}, badge(p.state === 'open' ? 'online' : 'offline', t('serial.' + p.state))),
			h('td', { text: p.deviceId || '—' }),
			h('td', { text: p.transfer ? `${p.transfer.firmwareId} ${p.transfer.state} ${fmtBytes(p.transfer.bytes)}/${fmtBytes(p.transfer.size)}` : '—' }),
			h('td', { text: p.error || '—' }), h('td', { class: 'num', text: String(p.reopens) }))),
		'serial-table'));
}

export function mount(root, _params, ctx) {
	const sect = (title, testid) => {
		const body = h('div', {}, h('p', { class: 'muted', text: t('loading') }));
		root.append(h('section', { class: 'card-panel', 'data-testid': testid }, h('h2', { text: title }), body));
		return body;
	};
	root.append(pageHeader(t('nav.gateway'), h('button', { 'data-testid': 'gw-refresh', text: t('refresh'), onclick: () => refresh() })));
	const health = sect(t('gw.health'), 'gw-health');
	const cache = sect(t('gw.cache'), 'gw-cache');
	const cloud = sect(t('gw.cloud'), 'gw-cloud');
	const serial = sect(t('gw.serial'), 'gw-serial');

	async function refresh() {
		try {
			const [hl, c, cl, se] = await Promise.all([get('health'), optional('cache'), optional('cloud'), optional('serial')]);
			health.replaceChildren(healthPanel(hl));
			cache.replaceChildren(cachePanel(c));
			cloud.replaceChildren(cloudPanel(cl));
			serial.replaceChildren(serialPanel(se));
		} catch (e) {
			ctx.error(e);
		}
	}
	refresh();
	return { refresh, onFrame() {} };
}
