/*
 * usdt_request.c: request-start and request-done, and the per-request state
 * the other probes share (see usdt_state.h).
 *
 * Licensed under the Apache License, Version 2.0.
 */
#include "httpd.h"
#include "http_config.h"
#include "http_ssl.h"

#include "usdt_record.h"
#include "usdt_state.h"
#include "usdt_probes.h"    /* last: after ap_config.h, see the header */

USDT_HIDDEN usdt_id_source *usdt_ids;

/* The request the client sent: not a subrequest, not an internal redirect. */
static request_rec *usdt_client_of(request_rec *r)
{
	while (r->main != NULL)
		r = r->main;
	while (r->prev != NULL)
		r = r->prev;
	return r;
}

/*
 * The state of r's client request; with create, made on first use: the
 * request's id and its place on the connection are fixed then.
 */
usdt_request_state *usdt_request_state_get(request_rec *r, int create)
{
	request_rec *client = usdt_client_of(r);
	usdt_request_state *st;

	st = ap_get_module_config(client->request_config, &usdt_module);
	if (st != NULL || !create)
		return st;
	st = apr_pcalloc(client->pool, sizeof(*st));
	st->id = usdt_id_next(usdt_ids);
	st->conn_id = usdt_conn_id(client->connection);
	st->conn_request = usdt_conn_count_request(client);
	ap_set_module_config(client->request_config, &usdt_module, st);
	return st;
}

/* dthttpd_t for r: what the request says, then what the state knows. */
void usdt_request_record(dthttpd_t *rec, request_rec *r,
                         const usdt_request_state *st, int status,
                         apr_time_t now, const char *empty)
{
	const request_rec *client = usdt_client_request(r);
	conn_rec *cc = USDT_CLIENT_CONN(r->connection);
	const char *tls;

	usdt_record_fill(rec, r, st->id, status, now, empty);
	rec->conn_id = st->conn_id;
	rec->conn_request = st->conn_request;
	rec->handler_us = usdt_mark_us(client->request_time, st->handler_at);
	rec->first_byte_us = usdt_mark_us(client->request_time, st->first_byte_at);
	rec->last_byte_us = usdt_mark_us(client->request_time, st->last_byte_at);
	if (st->handler != NULL)
		rec->handler = st->handler;
	if (ap_ssl_conn_is_ssl(cc)) {
		rec->flags |= DTHTTPD_F_TLS;
		tls = ap_ssl_var_lookup(r->pool, r->server, cc, NULL, "SSL_PROTOCOL");
		if (tls != NULL)
			rec->tls_protocol = tls;
	}
}

/* post_read_request, while request-start or request-header is traced. */
void usdt_request_begin(request_rec *r)
{
	usdt_request_state *st;
	dthttpd_t rec;
	char empty[1] = "";   /* on this stack: touched, alive while we fire */

	/* An internal redirect runs post_read_request again on a new
	 * request_rec: that is still the client's first request. */
	if (r->prev != NULL || r->main != NULL)
		return;
	st = usdt_request_state_get(r, 1);
	if (USDT_REQUEST_START_ENABLED()) {
		usdt_request_record(&rec, r, st, 0, apr_time_now(), empty);
		USDT_REQUEST_START(rec.id, rec.status, (char *)rec.method,
		                   (char *)rec.uri, rec.elapsed_us, &rec);
	}
	if (USDT_REQUEST_HEADER_ENABLED())
		usdt_fire_request_headers(st->id, r);
}

/*
 * log_transaction, while request-done, response-header, conn-done or
 * child-done is traced.  A request without state was rejected while being
 * read, or the tracer attached after it began: it gets its id here.
 */
void usdt_request_end(request_rec *r)
{
	usdt_request_state *st;
	const request_rec *final;
	dthttpd_t rec;
	char empty[1] = "";

	if (r->main != NULL)
		return;
	st = usdt_request_state_get(r, 1);
	final = usdt_final_request(r);
	if (USDT_RESPONSE_HEADER_ENABLED())
		usdt_fire_response_headers(st->id, final);
	if (USDT_REQUEST_DONE_ENABLED()) {
		usdt_request_record(&rec, r, st, final->status, apr_time_now(), empty);
		USDT_REQUEST_DONE(rec.id, rec.status, (char *)rec.method,
		                  (char *)rec.uri, rec.elapsed_us, &rec);
	}
	if (USDT_CHILD_DONE_ENABLED())
		usdt_child_count_request();
}
