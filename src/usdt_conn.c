/*
 * usdt_conn.c: conn-start and conn-done, connection ids, and the count of
 * requests on a connection.
 *
 * The state of a client connection lives in its conn_config, made in
 * pre_connection while a connection probe is traced, or later by the first
 * traced request on it: a connection whose conn-start no tracer saw still
 * gets an id.  conn-done fires from a cleanup of the connection's pool,
 * registered after mod_ssl's.  By then mod_ssl has shut TLS down (at the
 * connection's end of stream), so the TLS protocol, cipher and SNI name are
 * copied into the state at the first traced request.
 *
 * HTTP/2 streams run on secondary connections (c->master is the client's),
 * in other threads than their client connection: they only read its state
 * and count themselves atomically.  If the client connection has no state
 * (it began before the tracer), its id is made without allocating: the
 * first stream stores it, tagged, in the connection's conn_config slot with
 * a compare-and-swap, and the others read it from there.
 *
 * Licensed under the Apache License, Version 2.0.
 */
#include "httpd.h"
#include "http_config.h"
#include "http_ssl.h"
#include "apr_atomic.h"
#include "apr_optional.h"
#include "apr_strings.h"
#include "mod_http2.h"

#include "usdt_record.h"
#include "usdt_state.h"
#include "usdt_probes.h"    /* last: after ap_config.h, see the header */

/* A slot holding an id, not a state: ids are stored as id << 1 | 1. */
#define USDT_TAGGED(p) (((uintptr_t)(p) & 1) != 0)

static void **usdt_conn_slot(conn_rec *c)
{
	return &((void **)c->conn_config)[usdt_module.module_index];
}

static usdt_conn_state *usdt_conn_state_of(conn_rec *c)
{
	void *p = *usdt_conn_slot(c);

	return USDT_TAGGED(p) ? NULL : p;
}

/* Copy c's TLS parameters into st, once, by the first thread to get here. */
static void usdt_conn_capture_tls(usdt_conn_state *st, conn_rec *c,
                                  apr_pool_t *scratch)
{
	const char *v;

	if (apr_atomic_cas32(&st->tls_state, 1, 0) != 0)
		return;
	if (ap_ssl_conn_is_ssl(c)) {
		st->tls = 1;
		v = ap_ssl_var_lookup(scratch, c->base_server, c, NULL, "SSL_PROTOCOL");
		apr_cpystrn(st->tls_protocol, v != NULL ? v : "", sizeof(st->tls_protocol));
		v = ap_ssl_var_lookup(scratch, c->base_server, c, NULL, "SSL_CIPHER");
		apr_cpystrn(st->tls_cipher, v != NULL ? v : "", sizeof(st->tls_cipher));
		v = ap_ssl_var_lookup(scratch, c->base_server, c, NULL, "SSL_TLS_SNI");
		apr_cpystrn(st->sni, v != NULL ? v : "", sizeof(st->sni));
	}
	apr_atomic_set32(&st->tls_state, 2);
}

static apr_status_t usdt_conn_cleanup(void *data)
{
	conn_rec *c = data;
	usdt_conn_state *st = usdt_conn_state_of(c);
	dthttpd_conn_t rec;
	char empty[1] = "";

	if (st == NULL || !USDT_CONN_DONE_ENABLED())
		return APR_SUCCESS;
	usdt_conn_record_fill(&rec, c, st->id,
	                      usdt_elapsed_us(st->start, apr_time_now()),
	                      apr_atomic_read32(&st->requests), empty);
	/* no traced request: mod_ssl may still know (it rarely does now) */
	usdt_conn_capture_tls(st, c, c->pool);
	if (apr_atomic_read32(&st->tls_state) == 2 && st->tls) {
		rec.flags |= DTHTTPD_F_TLS;
		rec.tls_protocol = st->tls_protocol;
		rec.tls_cipher = st->tls_cipher;
		rec.sni = st->sni;
	}
	USDT_CONN_DONE(rec.conn_id, rec.requests, (char *)rec.raddr,
	               (char *)rec.laddr, rec.elapsed_us, &rec);
	return APR_SUCCESS;
}

/* The state of client connection c (not a secondary), made if need be in
 * c->pool by the thread that owns c; conn-done armed while traced. */
static usdt_conn_state *usdt_conn_state_make(conn_rec *c, apr_time_t start)
{
	usdt_conn_state *st = usdt_conn_state_of(c);
	void **slot = usdt_conn_slot(c);

	if (st == NULL) {
		st = apr_pcalloc(c->pool, sizeof(*st));
		/* keep an id a stream already gave this connection */
		st->id = USDT_TAGGED(*slot) ? (uint64_t)((uintptr_t)*slot >> 1)
		                            : usdt_id_next(usdt_ids);
		st->start = start;
		*slot = st;
	}
	if (!st->done_armed && USDT_CONN_DONE_ENABLED()) {
		st->done_armed = 1;
		apr_pool_cleanup_register(c->pool, c, usdt_conn_cleanup,
		                          apr_pool_cleanup_null);
	}
	return st;
}

/* pre_connection, while conn-start or conn-done is traced. */
void usdt_conn_begin(conn_rec *c)
{
	usdt_conn_state *st;
	dthttpd_conn_t rec;
	char empty[1] = "";

	if (c->master != NULL)
		return;
	st = usdt_conn_state_make(c, apr_time_now());
	if (!USDT_CONN_START_ENABLED())
		return;
	usdt_conn_record_fill(&rec, c, st->id, 0, 0, empty);
	if (ap_ssl_conn_is_ssl(c))
		rec.flags |= DTHTTPD_F_TLS;
	USDT_CONN_START(rec.conn_id, rec.requests, (char *)rec.raddr,
	                (char *)rec.laddr, rec.elapsed_us, &rec);
}

/* The id of the client connection of c. */
uint64_t usdt_conn_id(conn_rec *c)
{
	conn_rec *client = USDT_CLIENT_CONN(c);
	void **slot = usdt_conn_slot(client);
	void *p, *tagged;
	uint64_t id;

	if (client == c)
		return usdt_conn_state_make(c, apr_time_now())->id;
	p = apr_atomic_casptr((volatile void **)slot, NULL, NULL); /* a read */
	if (p != NULL)
		return USDT_TAGGED(p) ? (uint64_t)((uintptr_t)p >> 1)
		                      : ((usdt_conn_state *)p)->id;
	id = usdt_id_next(usdt_ids);
	tagged = (void *)(uintptr_t)((id << 1) | 1);
	p = apr_atomic_casptr((volatile void **)slot, tagged, NULL);
	if (p == NULL)
		return id;
	/* another stream was first: its id wins */
	return USDT_TAGGED(p) ? (uint64_t)((uintptr_t)p >> 1)
	                      : ((usdt_conn_state *)p)->id;
}

static APR_OPTIONAL_FN_TYPE(http2_var_lookup) *usdt_h2_var;

static uint32_t usdt_h2_stream_id(request_rec *r)
{
	const char *v;

	if (usdt_h2_var == NULL)
		usdt_h2_var = APR_RETRIEVE_OPTIONAL_FN(http2_var_lookup);
	if (usdt_h2_var == NULL)
		return 0;
	v = usdt_h2_var(r->pool, r->server, r->connection, r,
	                (char *)"H2_STREAM_ID");
	return v != NULL ? (uint32_t)apr_atoi64(v) : 0;
}

/*
 * Count client request r on its connection; its place there: n for the
 * n-th request of an HTTP/1.x connection, an HTTP/2 stream's id.
 */
uint32_t usdt_conn_count_request(request_rec *r)
{
	conn_rec *c = r->connection;
	usdt_conn_state *st;

	if (c->master == NULL) {
		st = usdt_conn_state_make(c, r->request_time);
		usdt_conn_capture_tls(st, c, r->pool);
		return apr_atomic_inc32(&st->requests) + 1;
	}
	st = usdt_conn_state_of(c->master);
	if (st != NULL) {
		usdt_conn_capture_tls(st, c->master, r->pool);
		apr_atomic_inc32(&st->requests);
	}
	return usdt_h2_stream_id(r);
}
