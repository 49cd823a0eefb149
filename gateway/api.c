/* SPDX-License-Identifier: MIT */
/* api.c - REST resources. One route table maps (method, path pattern) to a
 * handler; '*' in a pattern is one id segment. Handlers validate input via
 * the domain modules and answer JSON. */
#define LOG_MOD "api"
#include "api.h"

#include <cJSON.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "catalogue.h"
#include "devices.h"
#include "images.h"
#include "json_in.h"
#include "log.h"
#include "records.h"
#include "tasks.h"
#include "util.h"

#define API_SEGS_MAX 6

struct api_call {
	struct api *a;
	const struct http_req *req;
	struct http_resp *resp;
	const char *id;            /* the '*' segment, or NULL */
};

typedef int (*api_fn)(struct api_call *c);

struct api_route {
	enum http_method method;
	const char *pattern;
	api_fn fn;
};

void api_init(struct api *a, struct core *core, struct store *st, const char *token)
{
	a->core = core;
	a->st = st;
	a->token = token;
	a->images = NULL;
	a->start_mono_ms = util_mono_ms();
}

/* ---- responses ---------------------------------------------------------- */

static int api_json(struct api_call *c, int status, cJSON *obj)
{
	return http_resp_json(c->resp, status, obj);
}

static int api_error(struct api_call *c, int status, const char *fmt, ...) OTAGW_PRINTF(3, 4);
static int api_error(struct api_call *c, int status, const char *fmt, ...)
{
	char text[OTAGW_ERR_TEXT_MAX + 64];
	cJSON *o = cJSON_CreateObject();
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (!o || !cJSON_AddStringToObject(o, "error", text)) {
		cJSON_Delete(o);
		return -ENOMEM;
	}
	return api_json(c, status, o);
}

static int api_status(int code)
{
	switch (code) {
	case -EINVAL:
	case -EBADMSG:
	case -ERANGE:
		return 400;
	case -ENOENT:
		return 404;
	case -EEXIST:
	case -EBUSY:
	case -OTAGW_ESTATE:
		return 409;
	case -EMSGSIZE:
		return 413;
	case -EACCES:
	case -OTAGW_EAUTH:
		return 401;
	default:
		return 500;
	}
}

/* Answers the error in e (or rc's text) with the status that fits rc. */
static int api_fail(struct api_call *c, int rc, const struct err_info *e)
{
	int status = api_status(rc);

	if (status == 500)
		LOGE("%s %s: %s", http_method_name(c->req->method), c->req->path,
		     e && e->code ? err_text(e) : otagw_strerror(rc));
	return api_error(c, status, "%s", e && e->code ? err_text(e) : otagw_strerror(rc));
}

/* ---- input -------------------------------------------------------------- */

/* Parses the body as one JSON object; on failure answers 400 and returns
 * non-zero. */
static int api_body(struct api_call *c, cJSON **out)
{
	struct err_info e = { 0 };
	const char *end = NULL;
	const char *buf = (const char *)c->req->body;
	size_t len = c->req->body_len;
	cJSON *j;

	*out = NULL;
	if (!buf || !len)
		return api_error(c, 400, "request body required: a JSON object") ?: 1;
	if (json_in_strict(c->req->body, len, &e))
		return api_error(c, 400, "malformed JSON body: %s", e.text) ?: 1;
	j = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
	while (j && end && end < buf + len && isspace((unsigned char)*end))
		end++;
	if (!j || end != buf + len) {
		cJSON_Delete(j);
		return api_error(c, 400, "malformed JSON body") ?: 1;
	}
	if (!cJSON_IsObject(j)) {
		cJSON_Delete(j);
		return api_error(c, 400, "request body must be a JSON object") ?: 1;
	}
	*out = j;
	return 0;
}

static int api_uint_arg(struct api_call *c, const char *name, uint64_t def, uint64_t min,
			uint64_t max, unsigned *out)
{
	const char *v = http_arg(c->req, name);
	uint64_t u = def;

	if (v && (parse_u64(v, strlen(v), max, &u) || u < min))
		return api_error(c, 400, "query parameter '%s' must be an integer from %llu to %llu",
				 name, (unsigned long long)min, (unsigned long long)max) ?: 1;
	*out = (unsigned)u;
	return 0;
}

struct api_page {
	unsigned page, size;
};

static int api_paging(struct api_call *c, struct api_page *p)
{
	if (api_uint_arg(c, "page", 0, 0, 1000000000, &p->page))
		return 1;
	return api_uint_arg(c, "size", OTAGW_PAGE_SIZE_DEFAULT, 1, OTAGW_PAGE_SIZE_MAX, &p->size);
}

/* An optional id-valued filter such as ?productId=; bad ids answer 400. */
static int api_id_arg(struct api_call *c, const char *name, const char **out)
{
	*out = http_arg(c->req, name);
	if (*out && !util_id_valid(*out))
		return api_error(c, 400, "query parameter '%s' is not a valid id", name) ?: 1;
	return 0;
}

static int api_list(struct api_call *c, const struct api_page *p, cJSON *items, int64_t total)
{
	cJSON *o = cJSON_CreateObject();

	if (!o) {
		cJSON_Delete(items);
		return -ENOMEM;
	}
	cJSON_AddNumberToObject(o, "total", (double)total);
	cJSON_AddNumberToObject(o, "page", p->page);
	cJSON_AddNumberToObject(o, "size", p->size);
	cJSON_AddItemToObject(o, "items", items);
	return api_json(c, 200, o);
}

/* ---- firmware ----------------------------------------------------------- */

/* Adds "image" (its cache state) to a firmware's JSON. */
static void api_add_image(struct api *a, cJSON *fw)
{
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(fw, "id");
	cJSON *img;

	if (!a->images || !cJSON_IsString(id))
		return;
	img = images_firmware_json(a->images, id->valuestring);
	if (img)
		cJSON_AddItemToObject(fw, "image", img);
}

static int api_firmware_reply(struct api_call *c, int status, struct firmware *fw)
{
	cJSON *o = firmware_to_json(fw);

	firmware_clear(fw);
	if (o)
		api_add_image(c->a, o);
	return o ? api_json(c, status, o) : -ENOMEM;
}

static int api_firmware_list(struct api_call *c)
{
	struct api_page p;
	const char *product;
	cJSON *items;
	int64_t total;
	int rc;

	if (api_paging(c, &p) || api_id_arg(c, "productId", &product))
		return 0;
	rc = catalogue_list(c->a->st, product, p.page, p.size, &items, &total);
	if (!rc) {
		cJSON *it;

		cJSON_ArrayForEach(it, items)
			api_add_image(c->a, it);
	}
	return rc ? api_fail(c, rc, NULL) : api_list(c, &p, items, total);
}

static int api_firmware_create(struct api_call *c)
{
	struct err_info e = { 0 };
	struct firmware fw = { 0 };
	cJSON *body;
	int rc;

	if (api_body(c, &body))
		return 0;
	rc = catalogue_create(c->a->st, body, &fw, &e);
	cJSON_Delete(body);
	if (rc)
		return api_fail(c, rc, &e);
	return api_firmware_reply(c, 201, &fw);
}

static int api_firmware_get(struct api_call *c)
{
	struct err_info e = { 0 };
	struct firmware fw = { 0 };
	int rc = catalogue_get(c->a->st, c->id, &fw, &e);

	return rc ? api_fail(c, rc, &e) : api_firmware_reply(c, 200, &fw);
}

/* Local edits of what the cloud made are refused (the cloud owns them):
 * 1 and a 409 answered, else 0. A missing object is left to the handler. */
static int api_cloud_owned(struct api_call *c, bool task)
{
	struct firmware fw = { 0 };
	struct task t = { 0 };
	bool cloud = false;

	if (task && !tasks_get(c->a->st, c->id, &t, NULL)) {
		cloud = t.cloud;
		task_clear(&t);
	} else if (!task && !catalogue_get(c->a->st, c->id, &fw, NULL)) {
		cloud = fw.cloud;
		firmware_clear(&fw);
	}
	if (!cloud)
		return 0;
	api_error(c, 409, "%s %s belongs to the cloud: change it there", task ? "task" : "firmware",
		  c->id);
	return 1;
}

static int api_firmware_put(struct api_call *c)
{
	struct err_info e = { 0 };
	struct firmware fw = { 0 };
	cJSON *body;
	int rc;

	if (api_cloud_owned(c, false) || api_body(c, &body))
		return 0;
	rc = catalogue_update(c->a->st, c->id, body, &fw, &e);
	if (!rc && c->a->images && (cJSON_HasObjectItem(body, "url") ||
				    cJSON_HasObjectItem(body, "size") ||
				    cJSON_HasObjectItem(body, "sign") ||
				    cJSON_HasObjectItem(body, "signMethod")))
		images_firmware_changed(c->a->images, c->id);   /* the old image may not match */
	cJSON_Delete(body);
	return rc ? api_fail(c, rc, &e) : api_firmware_reply(c, 200, &fw);
}

static int api_no_content(struct api_call *c)
{
	c->resp->status = 204;
	return 0;
}

static int api_firmware_delete(struct api_call *c)
{
	struct err_info e = { 0 };
	int rc;

	if (api_cloud_owned(c, false))
		return 0;
	rc = catalogue_delete(c->a->st, c->id, &e);
	if (rc)
		return api_fail(c, rc, &e);
	LOGI("firmware %s deleted", c->id);
	return api_no_content(c);
}

/* ---- devices ------------------------------------------------------------ */

static int api_device_reply(struct api_call *c, int status, struct device *d)
{
	cJSON *o = device_to_json(d);

	device_clear(d);
	return o ? api_json(c, status, o) : -ENOMEM;
}

static int api_devices_list(struct api_call *c)
{
	struct api_page p;
	const char *product;
	cJSON *items;
	int64_t total;
	int rc;

	if (api_paging(c, &p) || api_id_arg(c, "productId", &product))
		return 0;
	rc = devices_list(c->a->st, product, p.page, p.size, &items, &total);
	return rc ? api_fail(c, rc, NULL) : api_list(c, &p, items, total);
}

static int api_devices_create(struct api_call *c)
{
	struct err_info e = { 0 };
	struct device d = { 0 };
	cJSON *body;
	int rc;

	if (api_body(c, &body))
		return 0;
	rc = devices_create(c->a->st, body, &d, &e);
	cJSON_Delete(body);
	if (rc)
		return api_fail(c, rc, &e);
	LOGI("device %s created (product %s)", d.id, d.product_id);
	return api_device_reply(c, 201, &d);
}

static int api_device_get(struct api_call *c)
{
	struct err_info e = { 0 };
	struct device d = { 0 };
	int rc = devices_get(c->a->st, c->id, &d, &e);

	return rc ? api_fail(c, rc, &e) : api_device_reply(c, 200, &d);
}

static int api_device_put(struct api_call *c)
{
	struct err_info e = { 0 };
	struct device d = { 0 };
	cJSON *body;
	int rc;

	if (api_body(c, &body))
		return 0;
	rc = devices_update(c->a->st, c->id, body, &d, &e);
	cJSON_Delete(body);
	return rc ? api_fail(c, rc, &e) : api_device_reply(c, 200, &d);
}

static int api_device_delete(struct api_call *c)
{
	struct err_info e = { 0 };
	int rc = core_delete_device(c->a->core, c->id, &e);

	return rc ? api_fail(c, rc, &e) : api_no_content(c);
}

static int api_device_history(struct api_call *c)
{
	struct err_info e = { 0 };
	struct device d = { 0 };
	struct api_page p;
	cJSON *items;
	int64_t total;
	int rc;

	if (api_paging(c, &p))
		return 0;
	rc = devices_get(c->a->st, c->id, &d, &e);
	device_clear(&d);
	if (rc)
		return api_fail(c, rc, &e);
	rc = records_history(c->a->st, c->id, NULL, p.page, p.size, &items, &total);
	return rc ? api_fail(c, rc, NULL) : api_list(c, &p, items, total);
}

/* ---- tasks -------------------------------------------------------------- */

static int api_task_reply(struct api_call *c, int status, const char *id)
{
	struct err_info e = { 0 };
	cJSON *o = tasks_json(c->a->st, id, &e);

	return o ? api_json(c, status, o) : api_fail(c, e.code, &e);
}

static int api_tasks_create(struct api_call *c)
{
	struct err_info e = { 0 };
	struct task t;
	cJSON *body;
	int rc;

	if (api_body(c, &body))
		return 0;
	rc = tasks_create(c->a->st, c->id, body, &t, &e);
	cJSON_Delete(body);
	if (rc)
		return api_fail(c, rc, &e);
	LOGI("task %s created for firmware %s (%s)", t.id, t.firmware_id, task_mode_name(t.mode));
	rc = api_task_reply(c, 201, t.id);
	task_clear(&t);
	return rc;
}

static int api_tasks_list_of(struct api_call *c, const char *firmware_id)
{
	struct api_page p;
	cJSON *items;
	int64_t total;
	int rc;

	if (api_paging(c, &p))
		return 0;
	rc = tasks_list(c->a->st, firmware_id, p.page, p.size, &items, &total);
	return rc ? api_fail(c, rc, NULL) : api_list(c, &p, items, total);
}

static int api_tasks_list(struct api_call *c)
{
	const char *fw;

	if (api_id_arg(c, "firmwareId", &fw))
		return 0;
	return api_tasks_list_of(c, fw);
}

static int api_firmware_tasks(struct api_call *c)
{
	struct err_info e = { 0 };
	struct firmware fw = { 0 };
	int rc = catalogue_get(c->a->st, c->id, &fw, &e);

	firmware_clear(&fw);
	return rc ? api_fail(c, rc, &e) : api_tasks_list_of(c, c->id);
}

static int api_task_get(struct api_call *c)
{
	return api_task_reply(c, 200, c->id);
}

/* Collects {"deviceIds": [...]} into a borrowed array of strings. */
static int api_publish_ids(struct api_call *c, const cJSON *arr, const char ***ids, size_t *n)
{
	size_t cnt = (size_t)cJSON_GetArraySize(arr), i = 0;
	const cJSON *it;

	if (!cnt || cnt > OTAGW_PUBLISH_IDS_MAX)
		return api_error(c, 400, "'deviceIds' must list 1 to %d device ids",
				 OTAGW_PUBLISH_IDS_MAX) ?: 1;
	*ids = calloc(cnt, sizeof(**ids));
	if (!*ids)
		return -ENOMEM;
	cJSON_ArrayForEach(it, arr) {
		if (!cJSON_IsString(it) || !util_id_valid(it->valuestring)) {
			free(*ids);
			*ids = NULL;
			return api_error(c, 400, "'deviceIds'[%zu] is not a valid device id", i) ?: 1;
		}
		(*ids)[i++] = it->valuestring;
	}
	*n = cnt;
	return 0;
}

/* Validates {"all": true} | {"deviceIds": [...]}; answers 400 itself. */
static int api_publish_args(struct api_call *c, const cJSON *body, bool *all, const char ***ids,
			    size_t *n)
{
	const cJSON *jall = cJSON_GetObjectItemCaseSensitive(body, "all");
	const cJSON *jids = cJSON_GetObjectItemCaseSensitive(body, "deviceIds");
	const cJSON *it;

	cJSON_ArrayForEach(it, body)
		if (strcmp(it->string, "all") && strcmp(it->string, "deviceIds"))
			return api_error(c, 400, "unknown field '%.64s'", it->string) ?: 1;
	if (jall && !cJSON_IsBool(jall))
		return api_error(c, 400, "field 'all': expected true or false") ?: 1;
	if (jids && !cJSON_IsArray(jids))
		return api_error(c, 400, "field 'deviceIds': expected an array of ids") ?: 1;
	*all = jall && cJSON_IsTrue(jall);
	if (*all == !!jids)
		return api_error(c, 400, "give either \"all\": true or \"deviceIds\"") ?: 1;
	return *all ? 0 : api_publish_ids(c, jids, ids, n);
}

static int api_task_publish(struct api_call *c)
{
	struct core_publish_result res;
	struct err_info e = { 0 };
	const char **ids = NULL;
	cJSON *body, *o, *task;
	bool all = false;
	size_t n = 0;
	int rc;

	if (api_cloud_owned(c, true) || api_body(c, &body))
		return 0;
	rc = api_publish_args(c, body, &all, &ids, &n);
	if (!rc)
		rc = core_publish(c->a->core, c->id, all, ids, n, &res, &e) ? 2 : 0;
	free(ids);
	cJSON_Delete(body);
	if (rc == 2)
		return api_fail(c, e.code, &e);
	if (rc)
		return rc < 0 ? rc : 0;
	task = tasks_json(c->a->st, c->id, &e);
	o = cJSON_CreateObject();
	if (!task || !o) {
		cJSON_Delete(task);
		cJSON_Delete(o);
		return -ENOMEM;
	}
	cJSON_AddNumberToObject(o, "added", res.rec.added);
	cJSON_AddNumberToObject(o, "already", res.rec.already);
	cJSON_AddNumberToObject(o, "upToDate", res.rec.up_to_date);
	cJSON_AddNumberToObject(o, "pushed", res.pushed);
	cJSON_AddItemToObject(o, "task", task);
	return api_json(c, 200, o);
}

/* POST /api/tasks/{id}/pause {"reason"?}: nothing new starts until resumed. */
static int api_task_pause(struct api_call *c)
{
	static const char *const keys[] = { "reason" };
	char reason[OTAGW_REASON_MAX] = "paused by the operator";
	struct err_info e = { 0 };
	cJSON *body = NULL;
	int rc = 0;

	if (c->req->body_len) {
		if (api_body(c, &body))
			return 0;
		rc = json_in_check_keys(body, keys, 1, &e);
		if (!rc)
			rc = json_in_str(body, "reason", false, reason, sizeof(reason), &e);
		cJSON_Delete(body);
		if (rc < 0)
			return api_fail(c, rc, &e);
	}
	rc = tasks_pause(c->a->st, c->id, reason, &e);
	return rc ? api_fail(c, rc, &e) : api_task_reply(c, 200, c->id);
}

/* POST /api/tasks/{id}/resume: the rollout goes on (push-mode records are
 * pushed at once); the failures so far no longer count against the
 * failure threshold of the current wave. */
static int api_task_resume(struct api_call *c)
{
	struct err_info e = { 0 };
	int rc = tasks_resume(c->a->st, c->id, &e);

	if (rc)
		return api_fail(c, rc, &e);
	if (core_push_task(c->a->core, c->id, NULL))
		LOGW("task %s: cannot push after the resume", c->id);
	return api_task_reply(c, 200, c->id);
}

/* GET /api/tasks/{id}/events: the rollout's decisions, oldest first. */
static int api_task_events(struct api_call *c)
{
	struct err_info e = { 0 };
	struct task t;
	cJSON *o, *items;
	int rc = tasks_get(c->a->st, c->id, &t, &e);

	task_clear(&t);
	if (rc)
		return api_fail(c, rc, &e);
	items = rollout_events_json(c->a->st, c->id, 500);
	o = items ? cJSON_CreateObject() : NULL;
	if (!o || !cJSON_AddItemToObject(o, "items", items)) {
		cJSON_Delete(o);
		cJSON_Delete(items);
		return -ENOMEM;
	}
	return api_json(c, 200, o);
}

static int api_task_cancel(struct api_call *c)
{
	struct err_info e = { 0 };
	cJSON *o, *task;
	int n = 0, rc;

	if (api_cloud_owned(c, true))
		return 0;
	if (c->req->body_len) {    /* an empty body, or an empty object */
		cJSON *body;

		if (api_body(c, &body))
			return 0;
		rc = cJSON_GetArraySize(body);
		cJSON_Delete(body);
		if (rc)
			return api_error(c, 400, "cancel takes no fields");
	}
	rc = core_cancel_task(c->a->core, c->id, &n, &e);
	if (rc)
		return api_fail(c, rc, &e);
	if (rollout_event(c->a->st, c->id, util_now_ms(), "aborted", 0, "canceled by the operator"))
		LOGW("task %s: cannot note the abort", c->id);
	task = tasks_json(c->a->st, c->id, &e);
	o = cJSON_CreateObject();
	if (!task || !o) {
		cJSON_Delete(task);
		cJSON_Delete(o);
		return -ENOMEM;
	}
	cJSON_AddNumberToObject(o, "canceled", n);
	cJSON_AddItemToObject(o, "task", task);
	return api_json(c, 200, o);
}

/* ?state=waiting,processing -> a mask; answers 400 on an unknown state. */
static int api_state_mask(struct api_call *c, unsigned *mask)
{
	const char *v = http_arg(c->req, "state");
	char buf[128], *save = NULL, *tok;

	*mask = ~0u;
	if (!v || !*v)
		return 0;
	if (util_strlcpy(buf, v, sizeof(buf)))
		return api_error(c, 400, "query parameter 'state' is too long") ?: 1;
	*mask = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		enum record_state s;

		if (record_state_parse(tok, &s))
			return api_error(c, 400, "unknown state '%.32s' (waiting, processing, "
					 "success, failed, canceled)", tok) ?: 1;
		*mask |= REC_MASK(s);
	}
	return 0;
}

static int api_task_records(struct api_call *c)
{
	struct err_info e = { 0 };
	struct api_page p;
	unsigned mask;
	struct task t;
	cJSON *items;
	int64_t total;
	int rc;

	if (api_paging(c, &p) || api_state_mask(c, &mask))
		return 0;
	rc = tasks_get(c->a->st, c->id, &t, &e);
	if (rc)
		return api_fail(c, rc, &e);
	task_clear(&t);
	rc = records_list(c->a->st, c->id, mask, p.page, p.size, &items, &total);
	return rc ? api_fail(c, rc, NULL) : api_list(c, &p, items, total);
}

/* ---- image cache -------------------------------------------------------- */

static int api_cache_list(struct api_call *c)
{
	cJSON *o;
	int rc;

	if (!c->a->images)
		return api_error(c, 404, "no image cache");
	rc = images_list(c->a->images, &o);
	return rc ? api_fail(c, rc, NULL) : api_json(c, 200, o);
}

static int api_cache_delete(struct api_call *c)
{
	struct err_info e = { 0 };
	int rc;

	if (!c->a->images)
		return api_error(c, 404, "no image cache");
	rc = images_remove(c->a->images, c->id, &e);
	return rc ? api_fail(c, rc, &e) : api_no_content(c);
}

struct api_upload {
	struct images *im;
	struct images_upload *u;
	char fw_id[OTAGW_ID_MAX];
};


/* "/api/firmware/<id>/image" -> id; false for anything else. */
static bool api_upload_path(const char *path, char id[OTAGW_ID_MAX])
{
	static const char pre[] = "/api/firmware/";
	const char *p = path + sizeof(pre) - 1, *slash;

	if (strncmp(path, pre, sizeof(pre) - 1))
		return false;
	slash = strchr(p, '/');
	if (!slash || (size_t)(slash - p) >= OTAGW_ID_MAX || strcmp(slash, "/image"))
		return false;
	memcpy(id, p, (size_t)(slash - p));
	id[slash - p] = '\0';
	return util_id_valid(id);
}

static bool api_upload_match(void *ctx, const struct http_req *req)
{
	char id[OTAGW_ID_MAX];

	return req->method == HTTP_PUT && api_upload_path(req->path, id);
}

/* Answers resp with {"error": text} and status (a stream has no api_call). */
static int api_stream_error(struct api *a, struct http_resp *resp, int status, const char *text)
{
	struct api_call c = { .a = a, .resp = resp };

	resp->content_type = "application/json";
	if (status == 401)
		resp->www_authenticate = "Bearer realm=\"otagw\"";
	return api_error(&c, status, "%s", text) ?: 1;
}

static bool api_fw_is_cloud(struct api *a, const char *id)
{
	struct firmware fw = { 0 };
	bool cloud = !catalogue_get(a->st, id, &fw, NULL) && fw.cloud;

	firmware_clear(&fw);
	return cloud;
}

static int api_upload_begin(void *ctx, const struct http_req *req, uint64_t len, void **state,
			    struct http_resp *resp)
{
	struct api *a = ctx;
	struct err_info e = { 0 };
	struct api_upload *up;
	int rc;

	if (!api_authorized(a, req))
		return api_stream_error(a, resp, 401, "missing or wrong API token");
	if (!a->images)
		return api_stream_error(a, resp, 404, "no image cache");
	up = calloc(1, sizeof(*up));
	if (!up)
		return -ENOMEM;
	up->im = a->images;
	if (!api_upload_path(req->path, up->fw_id) || !len) {
		free(up);
		return api_stream_error(a, resp, 400, "the body must be the image");
	}
	if (api_fw_is_cloud(a, up->fw_id)) {
		free(up);
		return api_stream_error(a, resp, 409, "the firmware belongs to the cloud: its image "
					"comes from its url");
	}
	rc = images_upload_begin(a->images, up->fw_id, len, &up->u, &e);
	if (rc) {
		free(up);
		return api_stream_error(a, resp, rc == -ENOSPC ? 507 : rc == -EFBIG ? 413 :
					rc == -EBADMSG ? 422 : api_status(rc), err_text(&e));
	}
	*state = up;
	LOGI("firmware %s: upload of %llu bytes started", up->fw_id, (unsigned long long)len);
	return 0;
}

static int api_upload_data(void *state, const void *buf, size_t len, struct http_resp *resp)
{
	struct api_upload *up = state;
	struct err_info e = { 0 };
	int rc = images_upload_feed(up->u, buf, len, &e);

	if (!rc)
		return 0;
	images_upload_abort(up->u);
	free(up);
	return api_stream_error(NULL, resp, rc == -EFBIG ? 413 : rc == -ENOSPC ? 507 : 500,
				err_text(&e));
}

static int api_upload_end(void *state, struct http_resp *resp)
{
	struct api_upload *up = state;
	struct err_info e = { 0 };
	int rc = images_upload_end(up->u, &e);
	cJSON *o;

	if (rc) {
		free(up);
		return api_stream_error(NULL, resp, rc == -ENOSPC ? 507 : 422, err_text(&e)) > 0 ?
			0 : -ENOMEM;
	}
	o = cJSON_CreateObject();
	if (o) {
		cJSON_AddStringToObject(o, "id", up->fw_id);
		cJSON_AddItemToObject(o, "image", images_firmware_json(up->im, up->fw_id));
	}
	free(up);
	resp->content_type = "application/json";
	resp->status = 200;
	resp->body = o ? cJSON_PrintUnformatted(o) : NULL;
	resp->body_len = resp->body ? strlen(resp->body) : 0;
	cJSON_Delete(o);
	return resp->body ? 0 : -ENOMEM;
}

static void api_upload_abort(void *state)
{
	struct api_upload *up = state;

	LOGW("firmware %s: upload interrupted", up->fw_id);
	images_upload_abort(up->u);
	free(up);
}

const struct http_stream_ops api_image_upload = {
	.match = api_upload_match,
	.begin = api_upload_begin,
	.data = api_upload_data,
	.end = api_upload_end,
	.abort = api_upload_abort,
};

/* ---- health ------------------------------------------------------------- */

static int api_health(struct api_call *c)
{
	cJSON *o = cJSON_CreateObject();
	int db = store_ping(c->a->st);
	int64_t up_s = (util_mono_ms() - c->a->start_mono_ms) / 1000;    /* whole seconds */

	if (!o)
		return -ENOMEM;
	cJSON_AddStringToObject(o, "status", db ? "degraded" : "ok");
	cJSON_AddStringToObject(o, "version", OTAGW_VERSION);
	cJSON_AddNumberToObject(o, "schemaVersion", store_version(c->a->st));
	cJSON_AddStringToObject(o, "database", db ? "unreadable" : "ok");
	cJSON_AddNumberToObject(o, "uptimeSeconds", (double)up_s);
	cJSON_AddNumberToObject(o, "sessions",
				(double)session_reg_count(c->a->core->sessions));
	return api_json(c, db ? 503 : 200, o);
}

/* ---- status resources of other modules ---------------------------------- */

int api_add_status(struct api *a, const char *name, void *(*fn)(void *arg), void *arg)
{
	if (!util_id_valid(name) || !fn)
		return -EINVAL;
	if (a->nstatus >= API_STATUS_MAX)
		return -ENOSPC;
	a->status[a->nstatus++] = (struct api_status){ name, fn, arg };
	return 0;
}

int api_add_handler(struct api *a, const char *prefix, http_handler fn, void *ctx)
{
	if (a->next >= API_EXT_MAX)
		return -ENOSPC;
	a->ext[a->next].prefix = prefix;
	a->ext[a->next].fn = fn;
	a->ext[a->next++].ctx = ctx;
	return 0;
}

/* A registered handler's path: 1 and its answer in *rc. */
static int api_ext(struct api_call *c, int *rc)
{
	for (size_t i = 0; i < c->a->next; i++) {
		size_t n = strlen(c->a->ext[i].prefix);

		if (strncmp(c->req->path, c->a->ext[i].prefix, n) ||
		    (c->req->path[n] && c->req->path[n] != '/'))
			continue;
		*rc = c->a->ext[i].fn(c->a->ext[i].ctx, c->req, c->resp);
		return 1;
	}
	return 0;
}

/* GET /api/{name} of a registered status: 1 when path is one (answered). */
static int api_status_get(struct api_call *c, int *rc)
{
	for (size_t i = 0; i < c->a->nstatus; i++) {
		const struct api_status *st = &c->a->status[i];

		if (strncmp(c->req->path, "/api/", 5) || strcmp(c->req->path + 5, st->name))
			continue;
		if (c->req->method != HTTP_GET && c->req->method != HTTP_HEAD)
			*rc = api_error(c, 405, "method %s not allowed on %s",
					http_method_name(c->req->method), c->req->path);
		else
			*rc = api_json(c, 200, st->fn(st->arg));
		return 1;
	}
	return 0;
}

/* ---- routing ------------------------------------------------------------ */

static const struct api_route api_routes[] = {
	{ HTTP_GET, "/api/health", api_health },
	{ HTTP_GET, "/api/firmware", api_firmware_list },
	{ HTTP_POST, "/api/firmware", api_firmware_create },
	{ HTTP_GET, "/api/firmware/*", api_firmware_get },
	{ HTTP_PUT, "/api/firmware/*", api_firmware_put },
	{ HTTP_DELETE, "/api/firmware/*", api_firmware_delete },
	{ HTTP_GET, "/api/firmware/*/tasks", api_firmware_tasks },
	{ HTTP_POST, "/api/firmware/*/tasks", api_tasks_create },
	{ HTTP_GET, "/api/devices", api_devices_list },
	{ HTTP_POST, "/api/devices", api_devices_create },
	{ HTTP_GET, "/api/devices/*", api_device_get },
	{ HTTP_PUT, "/api/devices/*", api_device_put },
	{ HTTP_DELETE, "/api/devices/*", api_device_delete },
	{ HTTP_GET, "/api/devices/*/history", api_device_history },
	{ HTTP_GET, "/api/tasks", api_tasks_list },
	{ HTTP_GET, "/api/tasks/*", api_task_get },
	{ HTTP_POST, "/api/tasks/*/publish", api_task_publish },
	{ HTTP_POST, "/api/tasks/*/cancel", api_task_cancel },
	{ HTTP_POST, "/api/tasks/*/abort", api_task_cancel },
	{ HTTP_POST, "/api/tasks/*/pause", api_task_pause },
	{ HTTP_POST, "/api/tasks/*/resume", api_task_resume },
	{ HTTP_GET, "/api/tasks/*/events", api_task_events },
	{ HTTP_GET, "/api/tasks/*/records", api_task_records },
	{ HTTP_GET, "/api/cache", api_cache_list },
	{ HTTP_DELETE, "/api/cache/*", api_cache_delete },
};

/* Matches path against pattern; a '*' segment must be a valid id and is
 * copied to id[]. A trailing '/' on path is tolerated. */
bool api_match(const char *pattern, const char *path, char id[OTAGW_ID_MAX])
{
	while (*pattern) {
		if (*pattern == '*') {
			size_t n = strcspn(path, "/");

			if (!n || n >= OTAGW_ID_MAX)
				return false;
			memcpy(id, path, n);
			id[n] = '\0';
			if (!util_id_valid(id))
				return false;
			path += n;
			pattern++;
			continue;
		}
		if (*pattern++ != *path++)
			return false;
	}
	return !*path || (path[0] == '/' && !path[1]);
}

bool api_authorized(const struct api *a, const struct http_req *req)
{
	static const char bearer[] = "Bearer ";
	const char *h = req->authorization;

	if (!a->token || !a->token[0])
		return true;
	if (!h || strncasecmp(h, bearer, sizeof(bearer) - 1))
		return false;
	h += sizeof(bearer) - 1;
	while (*h == ' ')
		h++;
	return util_ct_equal(h, a->token);
}

int api_handle(void *ctx, const struct http_req *req, struct http_resp *resp)
{
	struct api_call c = { .a = ctx, .req = req, .resp = resp };
	char id[OTAGW_ID_MAX];
	bool path_known = false;
	int rc;

	resp->content_type = "application/json";
	if (!api_authorized(c.a, req)) {
		resp->www_authenticate = "Bearer realm=\"otagw\"";
		return api_error(&c, 401, "missing or wrong API token (Authorization: Bearer ...)");
	}
	if (api_status_get(&c, &rc) || api_ext(&c, &rc))
		return rc;
	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(api_routes); i++) {
		const struct api_route *r = &api_routes[i];

		id[0] = '\0';
		if (!api_match(r->pattern, req->path, id))
			continue;
		path_known = true;
		if (r->method != req->method &&
		    !(req->method == HTTP_HEAD && r->method == HTTP_GET))
			continue;
		c.id = id[0] ? id : NULL;
		return r->fn(&c);
	}
	if (path_known)
		return api_error(&c, 405, "method %s not allowed on %s", http_method_name(req->method),
				 req->path);
	return api_error(&c, 404, "no such resource: %.200s", req->path);
}
