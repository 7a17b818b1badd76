/*
 * mod_usdt.c: USDT probes for every client request, and for the
 * connections, backend calls and child processes that serve them.
 *
 * The httpd provider (dtrace/mod_usdt.d):
 *   request-start, request-header   post_read_request
 *   request-handler                 insert_filter (a handler is about to run)
 *   proxy-start, proxy-done         mod_proxy's scheme_handler and
 *                                   request_status (usdt_proxy.c)
 *   response-header, request-done   log_transaction
 *   conn-start, conn-done           pre_connection, the connection's pool
 *   child-start, child-done         child_init, the child's pool
 * once per client request: HTTP/1.x requests and HTTP/2 streams, not
 * subrequests, and an internal redirect counts as the request the client
 * sent.  Requests that Apache rejects while reading them (400, 408, 413,
 * 414, 431) get a request-done without a start.
 *
 * Enable it with "a2enmod usdt" (Debian) or
 *     LoadModule usdt_module modules/mod_usdt.so
 * and trace with DTrace:   dtrace -n 'httpd*:::request-done { ... }'
 * or bpftrace:             bpftrace -e 'usdt:/path/mod_usdt.so:httpd:request__done { ... }'
 *
 * The module has no directive, no handler and no socket.  This file is the
 * table of hooks.  While no tracer is attached each hook is a test of its
 * probes' semaphores and a return; all the work is in separate cold
 * functions (usdt_request.c, usdt_timeline.c, usdt_conn.c, usdt_proxy.c,
 * usdt_child.c), so that the hooks need no stack frame, no canary and no
 * saved registers when nobody traces.  The only per-request hooks are
 * post_read_request, insert_filter and log_transaction.
 *
 * Licensed under the Apache License, Version 2.0.
 */
#include "httpd.h"
#include "http_config.h"
#include "http_connection.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"

#include "usdt_id.h"
#include "usdt_state.h"
#include "usdt_probes.h"    /* last: after ap_config.h, see the header */

module AP_MODULE_DECLARE_DATA usdt_module;

static int usdt_post_read_request(request_rec *r)
{
	if (USDT_UNLIKELY(USDT_REQUEST_START_ENABLED() ||
	                  USDT_REQUEST_HEADER_ENABLED()))
		usdt_request_begin(r);
	return DECLINED;
}

static void usdt_insert_filter(request_rec *r)
{
	if (USDT_UNLIKELY(USDT_REQUEST_HANDLER_ENABLED() ||
	                  USDT_REQUEST_DONE_ENABLED()))
		usdt_handler_begin(r);
}

static int usdt_log_transaction(request_rec *r)
{
	if (USDT_UNLIKELY(USDT_REQUEST_DONE_ENABLED() ||
	                  USDT_RESPONSE_HEADER_ENABLED() ||
	                  USDT_CONN_DONE_ENABLED() ||
	                  USDT_CHILD_DONE_ENABLED()))
		usdt_request_end(r);
	return DECLINED;
}

static int usdt_pre_connection(conn_rec *c, void *csd)
{
	(void)csd;
	if (USDT_UNLIKELY(USDT_CONN_START_ENABLED() || USDT_CONN_DONE_ENABLED()))
		usdt_conn_begin(c);
	return OK;
}

static void usdt_child_init(apr_pool_t *pchild, server_rec *s)
{
	(void)s;
	usdt_child_begin(pchild);
}

static int usdt_pre_config(apr_pool_t *pconf, apr_pool_t *plog,
                           apr_pool_t *ptemp)
{
	(void)pconf; (void)plog; (void)ptemp;
	usdt_proxy_register_external();
	return OK;
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
	ap_hook_pre_config(usdt_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
	ap_hook_post_config(usdt_post_config, NULL, NULL, APR_HOOK_MIDDLE);
	ap_hook_child_init(usdt_child_init, NULL, NULL, APR_HOOK_MIDDLE);
	/* After mod_ssl's (MIDDLE), so that it has set up the connection
	 * (conn-start sees TLS) and conn-done's pool cleanup runs before
	 * mod_ssl's; before core's (REALLY_LAST), which returns DONE and so
	 * ends the hook. */
	ap_hook_pre_connection(usdt_pre_connection, NULL, NULL, APR_HOOK_LAST);
	/* Last, so that mod_remoteip and friends have set the client address
	 * that request-start reports. */
	ap_hook_post_read_request(usdt_post_read_request, NULL, NULL,
	                          APR_HOOK_REALLY_LAST);
	/* Last, so that the handler and the filters of the others are set. */
	ap_hook_insert_filter(usdt_insert_filter, NULL, NULL, APR_HOOK_REALLY_LAST);
	/* First, so that no logger that fails can keep request-done from
	 * firing: every start must get its done. */
	ap_hook_log_transaction(usdt_log_transaction, NULL, NULL,
	                        APR_HOOK_REALLY_FIRST);
	usdt_timeline_register();
	usdt_proxy_register_optional();
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
