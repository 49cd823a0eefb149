// SPDX-License-Identifier: MIT
// i18n.js - English and Simplified Chinese texts. The language is the one
// chosen last (localStorage), else the browser's (navigator.language zh* ->
// Chinese). t('key', {name}) fills {name} placeholders; a key missing in
// Chinese falls back to English. Record states use JetLinks' Chinese names.
const LANG_KEY = 'otagw.lang';

const en = {
	'nav.label': 'Main', 'nav.firmware': 'Firmware', 'nav.devices': 'Devices', 'nav.gateway': 'Gateway',
	'lang.en': 'English', 'lang.zh': '中文', 'lang.switch': 'Switch language', skip: 'Skip to content',
	logout: 'Log out', 'live.connecting': 'Connecting…', 'live.live': 'Live', 'live.offline': 'Offline',
	'live.hint.connecting': 'Connecting to the live feed', 'live.hint.live': 'Changes appear as they happen',
	'live.hint.offline': 'No live feed: reconnecting; reload the page for fresh data',
	notFound: 'Page not found', crumbs: 'Breadcrumb', loading: 'Loading…', none: 'Nothing here yet.',
	never: 'never', 'ago.s': '{n} s ago', 'ago.m': '{n} min ago', 'ago.h': '{n} h ago',
	dismiss: 'Dismiss', cancel: 'Cancel', confirm: 'Please confirm', save: 'Save', close: 'Close',
	edit: 'Edit', delete: 'Delete', actions: 'Actions', refresh: 'Refresh', yes: 'yes', no: 'no',
	'err.http': 'Error {status}: {msg}', 'err.status': 'the gateway answered HTTP {status}',
	'err.network': 'Cannot reach the gateway (network error).',
	'err.upload': 'The upload was cut off: the gateway refused it or the connection broke.',
	'err.aborted': 'The upload was aborted.',
	'login.title': 'Log in', 'login.intro': 'This gateway requires its API token ([http] api_token in otagw.conf).',
	'login.token': 'API token', 'login.submit': 'Log in', 'login.wrong': 'Wrong token: the gateway refused it.',
	'login.expired': 'The gateway no longer accepts the token: log in again.', 'login.bye': 'Logged out.',
	'image.none': 'no image', 'image.downloading': 'downloading', 'image.ready': 'cached',
	'image.failed': 'failed', 'image.missing': 'missing',
	'fw.id': 'ID', 'fw.idHint': 'Optional: 1-64 of A-Z a-z 0-9 _ . : - (made up when empty)',
	'fw.product': 'Product', 'fw.name': 'Name', 'fw.version': 'Version', 'fw.order': 'Version order',
	'fw.url': 'Download URL', 'fw.size': 'Size', 'fw.signMethod': 'Sign method', 'fw.sign': 'Signature',
	'fw.noSign': '(none)', 'fw.description': 'Description', 'fw.properties': 'Properties (JSON object)',
	'fw.image': 'Image', 'fw.updated': 'Updated', 'fw.new': 'New firmware', 'fw.edit': 'Edit firmware',
	'fw.empty': 'No firmware yet: create one.', 'fw.badJson': 'Properties must be a JSON object, e.g. {"hw": "A2"}.',
	'fw.confirmDelete': 'Delete firmware {name} {version}? Its finished tasks and records go with it.',
	'origin.cloud': 'cloud', 'origin.cloudHint': 'Managed by the cloud: change it there.',
	'upload.short': 'Upload image', 'upload.title': 'Upload the image', 'upload.file': 'Image file',
	'upload.start': 'Upload', 'upload.pick': 'Choose a file first.', 'upload.sending': 'Sending {size}…',
	'upload.intro': 'The image of {name} {version} is verified against the firmware\'s size and signature as it arrives.',
	'upload.expect': 'Expected: {size}, checked with {method}.',
	'state.waiting': 'Waiting', 'state.processing': 'Processing', 'state.success': 'Success',
	'state.failed': 'Failed', 'state.canceled': 'Canceled',
	'tstate.created': 'not published', 'tstate.published': 'published', 'tstate.canceled': 'canceled',
	'mode.push': 'Push (the gateway sends it)', 'mode.pull': 'Pull (devices ask for it)',
	'task.title': 'Upgrade tasks', 'task.new': 'New task', 'task.name': 'Task name', 'task.mode': 'Mode',
	'task.modeHint': 'Push: online devices get the upgrade at once, the others when they connect.',
	'task.timeout': 'Timeout (s)', 'task.timeoutHint': 'A device without progress this long fails; 0 = no timeout.',
	'task.state': 'State', 'task.progress': 'Devices', 'task.created': 'Created',
	'task.empty': 'No task yet: create one, then publish it.', 'task.noDevices': 'no devices yet',
	'task.publish': 'Publish', 'task.cancel': 'Cancel task', 'task.total': '{n} devices in all',
	'task.confirmCancel': 'Cancel task {name}? Its unfinished upgrades become canceled.',
	'ro.wave': 'Wave {w} of {n}', 'ro.slots': 'slots {busy}/{max}', 'ro.paused': 'Paused: {why}',
	'ro.hold': 'Waiting: {why}', 'ro.pause': 'Pause', 'ro.resume': 'Resume',
	'pub.title': 'Publish {name}', 'pub.target': 'Devices', 'pub.all': 'All devices of product {product}',
	'pub.some': 'The devices ticked below', 'pub.pick': 'Devices to upgrade', 'pub.filter': 'Filter devices',
	'pub.submit': 'Publish', 'pub.none': 'Tick at least one device.',
	'pub.noDevices': 'The gateway knows no device of product {product} yet.',
	'pub.result': 'Published: {added} added, {already} already in the task, {upToDate} up to date, {pushed} pushed now.',
	'card.label': '{id}: {state}, {pct} %. Show history',
	'hist.title': 'History of {id}', 'hist.state': 'State', 'hist.progress': 'Progress', 'hist.version': 'Target version',
	'hist.reason': 'Reason', 'hist.created': 'Added', 'hist.started': 'Started', 'hist.completed': 'Finished',
	'hist.time': 'Time', 'hist.change': 'Change', 'hist.empty': 'No state change recorded.',
	'dev.filter': 'Filter by id, name, product', 'dev.count': '{n} devices, {online} online', 'dev.id': 'Device',
	'dev.version': 'Firmware version', 'dev.transport': 'Transport', 'dev.state': 'State', 'dev.lastSeen': 'Last seen',
	'dev.online': 'online', 'dev.offline': 'offline', 'dev.empty': 'No device has been seen yet.',
	'gw.health': 'Gateway', 'gw.status': 'Status', 'gw.version': 'Version', 'gw.database': 'Database',
	'gw.uptime': 'Up for', 'gw.seconds': '{n} s', 'gw.sessions': 'Device sessions',
	'gw.cache': 'Image cache', 'gw.cacheUsage': '{used} of {max} used ({pct} %)', 'gw.freeDisk': 'Free disk',
	'gw.downloads': 'Downloads running', 'gw.images': 'Images', 'gw.sha256': 'SHA-256', 'gw.lastUsed': 'Last used',
	'gw.pinned': 'Pinned', 'gw.firmware': 'Firmware', 'gw.noImages': 'The cache is empty.',
	'gw.cloud': 'Cloud link', 'gw.serial': 'Serial ports', 'gw.notConfigured': 'Not configured',
	'gw.linkState': 'State', 'gw.url': 'URL', 'gw.gatewayId': 'Gateway id', 'gw.lastError': 'Last error',
	'gw.outbox': 'Outbox (frames)', 'gw.lastAck': 'Last acknowledged', 'gw.reconnects': 'Reconnects',
	'gw.connectedSince': 'Connected since', 'gw.port': 'Port', 'gw.path': 'Path', 'gw.device': 'Device',
	'gw.transfer': 'Last transfer', 'gw.reopens': 'Reopens',
	'cloud.idle': 'idle', 'cloud.resolving': 'resolving', 'cloud.connecting': 'connecting', 'cloud.hello': 'greeting',
	'cloud.online': 'online', 'cloud.offline': 'offline', 'serial.open': 'open', 'serial.closed': 'closed',
};

const zh = {
	'nav.label': '主导航', 'nav.firmware': '固件', 'nav.devices': '设备', 'nav.gateway': '网关',
	'lang.switch': '切换语言', skip: '跳到正文', logout: '退出登录',
	'live.connecting': '连接中…', 'live.live': '实时', 'live.offline': '离线',
	'live.hint.connecting': '正在连接实时推送', 'live.hint.live': '变化会实时显示',
	'live.hint.offline': '实时推送已断开:正在重连;刷新页面可获取最新数据',
	notFound: '页面不存在', crumbs: '导航路径', loading: '加载中…', none: '暂无数据。',
	never: '从未', 'ago.s': '{n} 秒前', 'ago.m': '{n} 分钟前', 'ago.h': '{n} 小时前',
	dismiss: '关闭', cancel: '取消', confirm: '请确认', save: '保存', close: '关闭',
	edit: '编辑', delete: '删除', actions: '操作', refresh: '刷新', yes: '是', no: '否',
	'err.http': '错误 {status}:{msg}', 'err.status': '网关返回 HTTP {status}',
	'err.network': '无法连接网关(网络错误)。', 'err.upload': '上传中断:网关拒绝了文件或连接已断开。',
	'err.aborted': '上传已取消。',
	'login.title': '登录', 'login.intro': '此网关需要 API 令牌(otagw.conf 中的 [http] api_token)。',
	'login.token': 'API 令牌', 'login.submit': '登录', 'login.wrong': '令牌错误:网关拒绝了它。',
	'login.expired': '网关不再接受该令牌,请重新登录。', 'login.bye': '已退出登录。',
	'image.none': '无镜像', 'image.downloading': '下载中', 'image.ready': '已缓存', 'image.failed': '失败',
	'image.missing': '缺失',
	'fw.id': 'ID', 'fw.idHint': '可选:1-64 位 A-Z a-z 0-9 _ . : -(留空则自动生成)',
	'fw.product': '产品', 'fw.name': '名称', 'fw.version': '版本号', 'fw.order': '版本序号',
	'fw.url': '下载地址', 'fw.size': '大小', 'fw.signMethod': '签名方式', 'fw.sign': '签名',
	'fw.noSign': '(无)', 'fw.description': '说明', 'fw.properties': '其他配置(JSON 对象)',
	'fw.image': '镜像', 'fw.updated': '更新时间', 'fw.new': '新建固件', 'fw.edit': '编辑固件',
	'fw.empty': '暂无固件,请新建。', 'fw.badJson': '其他配置必须是 JSON 对象,例如 {"hw": "A2"}。',
	'fw.confirmDelete': '删除固件 {name} {version}?已结束的任务和记录会一并删除。',
	'origin.cloud': '云端', 'origin.cloudHint': '由云端管理,请在云端修改。',
	'upload.short': '上传镜像', 'upload.title': '上传固件镜像', 'upload.file': '镜像文件',
	'upload.start': '上传', 'upload.pick': '请先选择文件。', 'upload.sending': '正在发送 {size}…',
	'upload.intro': '{name} {version} 的镜像在接收时按固件的大小和签名校验。',
	'upload.expect': '预期:{size},校验方式 {method}。',
	'state.waiting': '等待升级', 'state.processing': '升级中', 'state.success': '升级完成',
	'state.failed': '升级失败', 'state.canceled': '已取消',
	'tstate.created': '未发布', 'tstate.published': '已发布', 'tstate.canceled': '已取消',
	'mode.push': '推送升级(网关下发)', 'mode.pull': '设备拉取(设备请求)',
	'task.title': '升级任务', 'task.new': '新建任务', 'task.name': '任务名称', 'task.mode': '升级方式',
	'task.modeHint': '推送:在线设备立即收到升级,其余设备在连接时收到。',
	'task.timeout': '超时(秒)', 'task.timeoutHint': '设备超过此时长无进度即判为失败;0 表示不超时。',
	'task.state': '状态', 'task.progress': '设备', 'task.created': '创建时间',
	'task.empty': '暂无任务:请新建任务后发布。', 'task.noDevices': '尚无设备',
	'task.publish': '发布', 'task.cancel': '取消任务', 'task.total': '共 {n} 台设备',
	'task.confirmCancel': '取消任务 {name}?未完成的升级将被取消。',
	'ro.wave': '第 {w} 批 / 共 {n} 批', 'ro.slots': '并发 {busy}/{max}', 'ro.paused': '已暂停:{why}',
	'ro.hold': '等待中:{why}', 'ro.pause': '暂停', 'ro.resume': '继续',
	'pub.title': '发布 {name}', 'pub.target': '设备', 'pub.all': '产品 {product} 的所有设备',
	'pub.some': '下方勾选的设备', 'pub.pick': '要升级的设备', 'pub.filter': '筛选设备',
	'pub.submit': '发布', 'pub.none': '请至少勾选一台设备。',
	'pub.noDevices': '网关尚未发现产品 {product} 的设备。',
	'pub.result': '已发布:新增 {added},已在任务中 {already},已是目标版本 {upToDate},已推送 {pushed}。',
	'card.label': '{id}:{state},{pct}%。查看升级历史',
	'hist.title': '{id} 的升级历史', 'hist.state': '状态', 'hist.progress': '进度', 'hist.version': '目标版本',
	'hist.reason': '原因', 'hist.created': '加入时间', 'hist.started': '开始时间', 'hist.completed': '完成时间',
	'hist.time': '时间', 'hist.change': '变化', 'hist.empty': '没有状态变化记录。',
	'dev.filter': '按 ID、名称、产品筛选', 'dev.count': '共 {n} 台设备,{online} 台在线', 'dev.id': '设备',
	'dev.version': '固件版本', 'dev.transport': '接入方式', 'dev.state': '状态', 'dev.lastSeen': '最后在线',
	'dev.online': '在线', 'dev.offline': '离线', 'dev.empty': '尚未发现任何设备。',
	'gw.health': '网关', 'gw.status': '状态', 'gw.version': '版本', 'gw.database': '数据库',
	'gw.uptime': '运行时间', 'gw.seconds': '{n} 秒', 'gw.sessions': '设备会话',
	'gw.cache': '镜像缓存', 'gw.cacheUsage': '已用 {used} / {max}({pct}%)', 'gw.freeDisk': '磁盘剩余',
	'gw.downloads': '正在下载', 'gw.images': '镜像数', 'gw.sha256': 'SHA-256', 'gw.lastUsed': '最近使用',
	'gw.pinned': '锁定', 'gw.firmware': '固件', 'gw.noImages': '缓存为空。',
	'gw.cloud': '云端连接', 'gw.serial': '串口', 'gw.notConfigured': '未配置',
	'gw.linkState': '状态', 'gw.url': '地址', 'gw.gatewayId': '网关 ID', 'gw.lastError': '最近错误',
	'gw.outbox': '待发消息(帧)', 'gw.lastAck': '最近确认', 'gw.reconnects': '重连次数',
	'gw.connectedSince': '连接时间', 'gw.port': '端口', 'gw.path': '路径', 'gw.device': '设备',
	'gw.transfer': '最近传输', 'gw.reopens': '重开次数',
	'cloud.idle': '空闲', 'cloud.resolving': '解析中', 'cloud.connecting': '连接中', 'cloud.hello': '握手中',
	'cloud.online': '在线', 'cloud.offline': '离线', 'serial.open': '已打开', 'serial.closed': '已关闭',
};

const DICTS = { en, zh };

function initial() {
	const saved = localStorage.getItem(LANG_KEY);
	if (saved && DICTS[saved]) return saved;
	return /^zh\b/i.test(navigator.language || '') ? 'zh' : 'en';
}

let current = initial();

export const lang = () => current;
export const otherLang = () => (current === 'zh' ? 'en' : 'zh');

export function setLang(l) {
	if (!DICTS[l]) return;
	current = l;
	localStorage.setItem(LANG_KEY, l);
}

export function t(key, vars) {
	const s = DICTS[current][key] ?? en[key] ?? key;
	return vars ? s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m)) : s;
}
