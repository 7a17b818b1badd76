/*
 * usdt_timeline.c: request-handler and the timeline of request-done.
 *
 * insert_filter runs in ap_invoke_handler() just before a handler, for the
 * request and for each internal redirect of it: that is request-handler,
 * and the mark handler_us.  While request-done is traced it also inserts
 * the timeline filter, the last of the request's output filters (just
 * before the connection's): the first brigade with bytes in it marks
 * first_byte_us; the return of the brigade with the EOS, once the
 * connection's filters have taken the end of the response, marks
 * last_byte_us.  What the network still holds after that (a slow client)
 * shows as request-done's elapsed_us minus last_byte_us: log_transaction
 * runs when the connection has written the request's last bytes.
 *
 * Licensed under the Apache License, Version 2.0.
 */
#include "httpd.h"
#include "http_config.h"
#include "util_filter.h"

#include "usdt_record.h"
#include "usdt_state.h"
#include "usdt_probes.h"    /* last: after ap_config.h, see the header */

#define USDT_TIMELINE_FILTER "USDT_TIMELINE"

static ap_filter_rec_t *usdt_timeline_handle;

static apr_status_t usdt_timeline_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
	usdt_request_state *st = f->ctx;
	apr_bucket *b;
	apr_status_t rv;
	int eos = 0, data = 0;

	/* Look before passing on: the brigade is emptied downstream. */
	for (b = APR_BRIGADE_FIRST(bb); b != APR_BRIGADE_SENTINEL(bb);
	     b = APR_BUCKET_NEXT(b)) {
		if (APR_BUCKET_IS_EOS(b))
			eos = 1;
		else if (!APR_BUCKET_IS_METADATA(b) && b->length != 0)
			data = 1;
	}
	if (data && st->first_byte_at == 0)
		st->first_byte_at = apr_time_now();
	rv = ap_pass_brigade(f->next, bb);
	if (eos) {
		if (st->last_byte_at == 0)
			st->last_byte_at = apr_time_now();
		ap_remove_output_filter(f);
	}
	return rv;
}

void usdt_timeline_register(void)
{
	usdt_timeline_handle = ap_register_output_filter(
		USDT_TIMELINE_FILTER, usdt_timeline_filter, NULL,
		(ap_filter_type)(AP_FTYPE_CONNECTION - 1));
}

/* insert_filter, while request-handler or request-done is traced. */
void usdt_handler_begin(request_rec *r)
{
	usdt_request_state *st;
	dthttpd_t rec;
	apr_time_t now;
	char empty[1] = "";   /* on this stack: touched, alive while we fire */

	if (r->main != NULL)
		return;
	st = usdt_request_state_get(r, 1);
	now = apr_time_now();
	if (st->handler_at == 0)
		st->handler_at = now;
	st->handler = usdt_handler_name(r, r->pool);
	if (USDT_REQUEST_HANDLER_ENABLED()) {
		usdt_request_record(&rec, r, st, 0, now, empty);
		/* request-handler reports the request about to be handled, which
		 * may be an internal redirect of the client's */
		rec.handler = st->handler;
		USDT_REQUEST_HANDLER(rec.id, rec.status, (char *)rec.handler,
		                     (char *)(r->uri != NULL ? r->uri : empty),
		                     rec.elapsed_us, &rec);
	}
	if (USDT_REQUEST_DONE_ENABLED())
		ap_add_output_filter_handle(usdt_timeline_handle, st, r,
		                            r->connection);
}
