/*
 * mod_usdt.c: USDT probes for every client request.
 *
 * Fires the httpd provider's request-start probe when Apache has read a
 * request's line and headers (post_read_request) and request-done when the
 * request is finished (log_transaction), once per client request: HTTP/1.x
 * requests and HTTP/2 streams, not subrequests, and an internal redirect
 * counts as the request the client sent.  Requests that Apache rejects while
 * reading them (400, 408, 413, 414, 431) get a request-done without a start.
 *
 * Enable it with "a2enmod usdt" (Debian) or
 *     LoadModule usdt_module modules/mod_usdt.so
 * and trace with DTrace:   dtrace -n 'httpd*:::request-done { ... }'
 * or bpftrace:             bpftrace -e 'usdt:/path/mod_usdt.so:httpd:request__done { ... }'
 *
 * The module has no directive, no handler and no socket.  While no tracer is
 * attached each hook is a test of the probe's semaphore and a return; the
 * record is built in separate cold functions, only when a probe is enabled.
 *
 * Licensed under the Apache License, Version 2.0.
 */
#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "http_protocol.h"

#include "usdt_id.h"
#include "usdt_record.h"
#include "usdt_probes.h"    /* last: after ap_config.h, see the header */

module AP_MODULE_DECLARE_DATA usdt_module;

/* Per-request state, in r->request_config, only for traced requests. */
typedef struct {
	uint64_t id;        /* the id request-start reported */
} usdt_request_state;

/* Set in post_config (in the parent, before the children are forked). */
static usdt_id_source *usdt_ids;

static void usdt_fire(const request_rec *r, uint64_t id, int status, int done)
{
	dthttpd_t rec;
	char empty[1] = "";   /* on this stack: touched, alive while we fire */

	usdt_record_fill(&rec, r, id, status, apr_time_now(), empty);
	if (done)
		USDT_REQUEST_DONE(rec.id, rec.status, (char *)rec.method,
		                  (char *)rec.uri, rec.elapsed_us, &rec);
	else
		USDT_REQUEST_START(rec.id, rec.status, (char *)rec.method,
		                   (char *)rec.uri, rec.elapsed_us, &rec);
}

/*
 * The cold halves of the hooks: built as separate functions so that the
 * hooks themselves need no stack frame, no canary and no saved registers
 * when nobody traces.
 */
static USDT_COLD void usdt_request_start(request_rec *r)
{
	usdt_request_state *state;

	/* An internal redirect runs post_read_request again on a new
	 * request_rec: that is still the client's first request. */
	if (r->prev != NULL || r->main != NULL)
		return;

	state = apr_palloc(r->pool, sizeof(*state));
	state->id = usdt_id_next(usdt_ids);
	ap_set_module_config(r->request_config, &usdt_module, state);
	usdt_fire(r, state->id, 0, 0);
}

static USDT_COLD void usdt_request_done(request_rec *r)
{
	const usdt_request_state *state;
	uint64_t id;

	if (r->main != NULL)
		return;
	/* The start was fired on the client's request; the hook gets that one
	 * too, but be sure. */
	state = ap_get_module_config(usdt_client_request(r)->request_config,
	                             &usdt_module);
	/* No state: rejected while being read, or the tracer attached after
	 * request-start.  Still a request; give it its own id. */
	id = state != NULL ? state->id : usdt_id_next(usdt_ids);
	usdt_fire(r, id, usdt_final_request(r)->status, 1);
}

static int usdt_post_read_request(request_rec *r)
{
	if (USDT_UNLIKELY(USDT_REQUEST_START_ENABLED()))
		usdt_request_start(r);
	return DECLINED;
}

static int usdt_log_transaction(request_rec *r)
{
	if (USDT_UNLIKELY(USDT_REQUEST_DONE_ENABLED()))
		usdt_request_done(r);
	return DECLINED;
}

static int usdt_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                            apr_pool_t *ptemp, server_rec *s)
{
	apr_status_t rv;

	(void)pconf; (void)plog; (void)ptemp;
	rv = usdt_id_source_get(&usdt_ids, s->process->pool);
	if (rv != APR_SUCCESS) {
		ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
		             "mod_usdt: cannot create the shared request-id "
		             "counter (anonymous shared memory)");
		return HTTP_INTERNAL_SERVER_ERROR;
	}
	return OK;
}

static void usdt_register_hooks(apr_pool_t *p)
{
	(void)p;
	ap_hook_post_config(usdt_post_config, NULL, NULL, APR_HOOK_MIDDLE);
	/* Last, so that mod_remoteip and friends have set the client address
	 * that request-start reports. */
	ap_hook_post_read_request(usdt_post_read_request, NULL, NULL,
	                          APR_HOOK_REALLY_LAST);
	/* First, so that no logger that fails can keep request-done from
	 * firing: every start must get its done. */
	ap_hook_log_transaction(usdt_log_transaction, NULL, NULL,
	                        APR_HOOK_REALLY_FIRST);
}

AP_DECLARE_MODULE(usdt) = {
	STANDARD20_MODULE_STUFF,
	NULL,                   /* create per-directory config: none */
	NULL,                   /* merge per-directory config */
	NULL,                   /* create per-server config: none */
	NULL,                   /* merge per-server config */
	NULL,                   /* no directives */
	usdt_register_hooks,    /* register hooks */
#ifdef AP_MODULE_FLAG_NONE
	AP_MODULE_FLAG_NONE     /* flags */
#endif
};
