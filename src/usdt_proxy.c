/*
 * usdt_proxy.c: proxy-start and proxy-done, one pair per backend attempt of
 * mod_proxy, whether or not mod_proxy is loaded.
 *
 * mod_proxy's pre_request and post_request hooks cannot serve: both are
 * RUN_FIRST external hooks (modules/proxy/mod_proxy.c, 2.4.x), so a hook
 * after mod_proxy_balancer's never runs for a balancer (its hook returns
 * OK), and for a plain ProxyPass the worker is only looked up after all
 * pre_request hooks declined (ap_proxy_pre_request() in proxy_util.c);
 * post_request runs only for balancers.  What sees every attempt with its
 * worker is scheme_handler: mod_proxy calls it once per attempt, the
 * chosen worker and the URL to send in hand.  Ours runs first and
 * declines.  An attempt is over when the next one begins (mod_proxy only
 * retries after a 503) or when mod_proxy reports the request's status
 * (request_status, an optional hook, run after the last attempt).
 *
 * scheme_handler is an external hook: registering it calls
 * proxy_hook_scheme_handler() in mod_proxy.so.  Linking against it would
 * keep mod_usdt from loading without mod_proxy, so the function is looked
 * up at pre_config (after every LoadModule, before the hooks are sorted).
 *
 * Licensed under the Apache License, Version 2.0.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE         /* RTLD_DEFAULT */
#endif
#include <dlfcn.h>

#include "httpd.h"
#include "http_config.h"
#include "apr_hooks.h"
#include "apr_optional_hooks.h"
#include "mod_proxy.h"

#include "usdt_record.h"
#include "usdt_state.h"
#include "usdt_probes.h"    /* last: after ap_config.h, see the header */

typedef void usdt_hook_scheme_handler_fn(proxy_HOOK_scheme_handler_t *pf,
                                         const char *const *pre,
                                         const char *const *succ, int order);

static const char *usdt_worker_name(const proxy_worker *w)
{
	if (w == NULL || w->s == NULL)
		return NULL;
#if AP_MODULE_MAGIC_AT_LEAST(20120211, 124)
	if (w->s->name_ex[0] != '\0')
		return w->s->name_ex;
#endif
	return w->s->name;
}

static const char *usdt_balancer_name(request_rec *r, const proxy_worker *w)
{
	const char *name = apr_table_get(r->subprocess_env, "BALANCER_NAME");

	if (name == NULL && w != NULL && w->balancer != NULL && w->balancer->s != NULL)
		name = w->balancer->s->name;
	return name;
}

static void usdt_proxy_fire_done(request_rec *r, usdt_request_state *st,
                                 int status, uint32_t flags)
{
	dthttpd_proxy_t rec;
	char empty[1] = "";

	if (USDT_PROXY_DONE_ENABLED()) {
		usdt_proxy_record_fill(&rec, r, st->id, status, flags,
		                       usdt_elapsed_us(st->proxy_at, apr_time_now()),
		                       st->backend, st->balancer, st->url, empty);
		USDT_PROXY_DONE(rec.id, rec.status, (char *)rec.backend,
		                (char *)rec.balancer, rec.backend_us, &rec);
	}
	st->proxy_at = 0;
}

static USDT_COLD void usdt_proxy_attempt(request_rec *r, proxy_worker *worker,
                                         const char *url)
{
	usdt_request_state *st = usdt_request_state_get(r, 1);
	dthttpd_proxy_t rec;
	apr_time_t now;
	char empty[1] = "";

	/* mod_proxy tries again only after its own 503 (the backend was not
	 * reached) */
	if (st->proxy_at != 0)
		usdt_proxy_fire_done(r, st, HTTP_SERVICE_UNAVAILABLE,
		                     DTHTTPD_PX_F_PROXY_ERROR);
	now = apr_time_now();
	st->proxy_at = now;
	st->backend = usdt_worker_name(worker);
	st->balancer = usdt_balancer_name(r, worker);
	st->url = url;
	if (USDT_PROXY_START_ENABLED()) {
		/* the attempt has no duration yet: backend_us 0; arg4 is the
		 * request's age, as for the request probes */
		usdt_proxy_record_fill(&rec, r, st->id, 0, 0, 0, st->backend,
		                       st->balancer, st->url, empty);
		USDT_PROXY_START(rec.id, rec.status, (char *)rec.backend,
		                 (char *)rec.balancer,
		                 usdt_elapsed_us(usdt_client_request(r)->request_time, now),
		                 &rec);
	}
}

static USDT_COLD void usdt_proxy_finish(request_rec *r, int status)
{
	usdt_request_state *st = usdt_request_state_get(r, 0);

	if (st == NULL || st->proxy_at == 0)
		return;
	/* OK and DONE: mod_proxy relayed the backend's answer, whose status is
	 * the request's.  With ProxyErrorOverride, mod_proxy_http returns a
	 * backend's error status instead, for Apache's ErrorDocument, and says
	 * so in a note (mod_proxy.c reads it too).  Anything else is an error
	 * of mod_proxy's own. */
	if (status == OK || status == DONE)
		usdt_proxy_fire_done(r, st, r->status, 0);
	else if (apr_table_get(r->notes, "proxy-error-override") != NULL)
		usdt_proxy_fire_done(r, st, status, 0);
	else
		usdt_proxy_fire_done(r, st, status, DTHTTPD_PX_F_PROXY_ERROR);
}

static int usdt_proxy_scheme_handler(request_rec *r, proxy_worker *worker,
                                     proxy_server_conf *conf, char *url,
                                     const char *proxyhost,
                                     apr_port_t proxyport)
{
	(void)conf; (void)proxyhost; (void)proxyport;
	if (USDT_UNLIKELY(USDT_PROXY_START_ENABLED() || USDT_PROXY_DONE_ENABLED()))
		usdt_proxy_attempt(r, worker, url);
	return DECLINED;
}

static int usdt_proxy_request_status(int *status, request_rec *r)
{
	if (USDT_UNLIKELY(USDT_PROXY_START_ENABLED() || USDT_PROXY_DONE_ENABLED()))
		usdt_proxy_finish(r, *status);
	return DECLINED;
}

/* register_hooks: request_status is an optional hook, kept by APR for
 * mod_proxy to find whether or not it is loaded. */
void usdt_proxy_register_optional(void)
{
	APR_OPTIONAL_HOOK(proxy, request_status, usdt_proxy_request_status,
	                  NULL, NULL, APR_HOOK_MIDDLE);
}

/* pre_config: scheme_handler, if mod_proxy is loaded. */
void usdt_proxy_register_external(void)
{
	usdt_hook_scheme_handler_fn *hook;
	const char *current = apr_hook_debug_current;

	*(void **)&hook = dlsym(RTLD_DEFAULT, "proxy_hook_scheme_handler");
	if (hook == NULL)
		return;
	/* The hook is named for the module that registers it (for
	 * ordering and for -DDUMP_HOOKS), as during register_hooks. */
	apr_hook_debug_current = "mod_usdt.c";
	hook(usdt_proxy_scheme_handler, NULL, NULL, APR_HOOK_REALLY_FIRST);
	apr_hook_debug_current = current;
}
