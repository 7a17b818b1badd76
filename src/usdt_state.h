/*
 * usdt_state.h: what the module remembers between hooks, only while a
 * probe is enabled: per client request (in the client request's
 * request_config, r->pool), per client connection (in its conn_config,
 * c->pool), and the ids.  The functions here are the cold halves of the
 * hooks of mod_usdt.c: each runs only behind a *_ENABLED() test.
 *
 * Licensed under the Apache License, Version 2.0.
 */
#ifndef USDT_STATE_H
#define USDT_STATE_H

#include "httpd.h"
#include "http_config.h"

#include "usdt_id.h"
#include "usdt_probes.h"

extern module AP_MODULE_DECLARE_DATA usdt_module;

/* The server's id source: request and connection ids come from it.  Set in
 * post_config, in the parent, before any child is forked. */
extern USDT_HIDDEN usdt_id_source *usdt_ids;

/* A client connection (never an HTTP/2 secondary one). */
typedef struct usdt_conn_state {
	uint64_t id;
	apr_time_t start;               /* accepted (or first seen) */
	volatile apr_uint32_t requests; /* client requests seen on it; HTTP/2
	                                 * streams count from their threads */
	int done_armed;                 /* conn-done is registered on c->pool */
	/* TLS as mod_ssl saw it at the first traced request: by conn-done,
	 * mod_ssl has shut the connection's TLS down.  Copied, without
	 * allocating, by whichever thread is first (tls_state 0 -> 1), read
	 * once complete (2). */
	volatile apr_uint32_t tls_state;
	int tls;
	char tls_protocol[32];
	char tls_cipher[128];
	char sni[256];
} usdt_conn_state;

/* A client request and its internal redirects. */
typedef struct usdt_request_state {
	uint64_t id;
	uint64_t conn_id;
	uint32_t conn_request;
	const char *handler;            /* the last request-handler's name */
	apr_time_t handler_at;          /* timeline marks, 0 = not reached */
	apr_time_t first_byte_at;
	apr_time_t last_byte_at;
	apr_time_t proxy_at;            /* an open backend attempt began */
	const char *backend, *balancer, *url;   /* of that attempt */
} usdt_request_state;

/* The connection a request arrived on: an HTTP/2 stream's client one. */
#define USDT_CLIENT_CONN(c) ((c)->master != NULL ? (c)->master : (c))

/* usdt_request.c */
USDT_HIDDEN usdt_request_state *usdt_request_state_get(request_rec *r, int create);
USDT_HIDDEN void usdt_request_begin(request_rec *r);
USDT_HIDDEN void usdt_request_end(request_rec *r);
USDT_HIDDEN void usdt_request_record(dthttpd_t *rec, request_rec *r,
                                     const usdt_request_state *st, int status,
                                     apr_time_t now, const char *empty);

/* usdt_conn.c */
USDT_HIDDEN void usdt_conn_begin(conn_rec *c);
USDT_HIDDEN uint64_t usdt_conn_id(conn_rec *c);
USDT_HIDDEN uint32_t usdt_conn_count_request(request_rec *r);

/* usdt_headers.c */
USDT_HIDDEN void usdt_fire_request_headers(uint64_t id, const request_rec *r);
USDT_HIDDEN void usdt_fire_response_headers(uint64_t id, const request_rec *r);

/* usdt_timeline.c */
USDT_HIDDEN void usdt_handler_begin(request_rec *r);
USDT_HIDDEN void usdt_timeline_register(void);

/* usdt_proxy.c */
USDT_HIDDEN void usdt_proxy_register_optional(void);
USDT_HIDDEN void usdt_proxy_register_external(void);

/* usdt_child.c */
USDT_HIDDEN void usdt_child_begin(apr_pool_t *pchild);
USDT_HIDDEN void usdt_child_count_request(void);

#endif /* USDT_STATE_H */
