/*
 * dthttpd.h: the records that mod_usdt passes as the last argument of its
 * probes: dthttpd_t (arg5 of the request probes), dthttpd_conn_t (arg5 of
 * conn-start and conn-done) and dthttpd_proxy_t (arg5 of proxy-start and
 * proxy-done).  Header and child probes have native arguments only.
 *
 * This is the one place the layout is written down.  The module fills it
 * (src/usdt_record.c), the D library dtrace/httpd.d and the bpftrace tools
 * get their view of it generated from this file by dtrace/gen-layout, and
 * tests/unit/test_layout.c checks the generated views against the compiler.
 *
 * Layout rule (from the original mod_usdt): fixed-width fields first, then
 * pointer-sized fields, each area followed by zeroed reserve.  New fields take
 * the place of reserve words, so old fields never move, and the fixed area
 * has the same offsets in 32-bit and 64-bit processes: every 64-bit field sits
 * at a multiple of 8 and the fixed area is exactly 128 bytes, so i386's 4-byte
 * alignment of uint64_t changes nothing.
 *
 * dthttpd_conn_t and dthttpd_proxy_t follow the same rule with a fixed area of
 * 64 bytes (DTHTTPD_CONN_FIXED_SIZE, DTHTTPD_PROXY_FIXED_SIZE).  Each record
 * carries ptr_size in its fixed area, so that a consumer (the D library)
 * knows how to read its pointer area.
 *
 * gen-layout reads the structs below line by line: keep one member per line,
 * written "type name;" or "type name[count];", with the types
 * uint64_t, int32_t, uint32_t, uint16_t and "const char *" only.
 *
 * Licensed under the Apache License, Version 2.0.
 */
#ifndef DTHTTPD_H
#define DTHTTPD_H

#include <stdint.h>

#define DTHTTPD_FIXED_SIZE 128
#define DTHTTPD_CONN_FIXED_SIZE 64
#define DTHTTPD_PROXY_FIXED_SIZE 64

/* Bits of dthttpd_t.flags and dthttpd_conn_t.flags. */
#define DTHTTPD_F_ABORTED   0x1  /* the client went away (c->aborted) */
#define DTHTTPD_F_KEEPALIVE 0x2  /* request: the connection was kept alive */
#define DTHTTPD_F_TLS       0x4  /* served over TLS (mod_ssl) */
#define DTHTTPD_F_REDIRECT  0x8  /* request: an internal redirect happened */

/* Bits of dthttpd_proxy_t.flags. */
#define DTHTTPD_PX_F_PROXY_ERROR 0x1 /* proxy-done: the status is mod_proxy's
                                      * own error (503: the backend was not
                                      * reached; 502: no usable answer, or
                                      * none within the timeout; 504: a
                                      * timeout sending the body or in a
                                      * tunnel), not the status of an
                                      * answer of the backend's */

typedef struct dthttpd {
	/* fixed-width area: offsets 0..127 in every data model */
	uint64_t id;             /* request id, unique for the life of the server */
	uint64_t elapsed_us;     /* microseconds since Apache began reading the request */
	uint64_t bytes_received; /* request body bytes a handler read (r->read_length);
	                          * 0 when the body was discarded unread */
	uint64_t bytes_sent;     /* response body bytes sent (%B) */
	int32_t status;          /* HTTP status; 0 at request-start, final (%>s) at done */
	uint16_t lport;          /* local TCP port */
	uint16_t rport;          /* remote TCP port */
	uint32_t ipversion;      /* 4 or 6: family of the remote address */
	uint32_t ptr_size;        /* sizeof(void *) of the process: 4 or 8, so that a
	                          * consumer knows how to read the pointer area */
	uint64_t conn_id;        /* the connection's id (conn-start's arg0); an
	                          * HTTP/2 stream: its client connection's */
	uint32_t conn_request;   /* 1 for the first request on the connection, n
	                          * for the n-th; an HTTP/2 stream: its stream id */
	uint32_t flags;          /* DTHTTPD_F_* */
	uint64_t handler_us;     /* the timeline, microseconds since the request */
	uint64_t first_byte_us;  /* began, 0 where not reached: a handler began, */
	uint64_t last_byte_us;   /* the first and the last response bytes left
	                          * the request's filters (request-done only) */
	int32_t status_first;    /* the original request's status (%<s) */
	uint32_t fixed_reserved32;
	uint64_t fixed_reserved[4];
	/* pointer area: NUL-terminated strings, never NULL ("" when absent) */
	const char *laddr;       /* local address, text */
	const char *raddr;       /* remote address, text (%a) */
	const char *method;      /* request method */
	const char *uri;         /* URI as sent by the client, with query string */
	const char *agent;       /* User-Agent header */
	const char *protocol;    /* "HTTP/1.1", "HTTP/2.0", ... */
	const char *host;        /* Host header (or :authority) as parsed */
	const char *vhost;       /* ServerName of the virtual host that served it */
	const char *handler;     /* the name Apache dispatched on: r->handler, or
	                          * the content type (a static file), where %R
	                          * logs "-" */
	const char *filename;    /* r->filename after mapping */
	const char *user;        /* r->user, "" unless authenticated */
	const char *content_type; /* of the response */
	const char *tls_protocol; /* "TLSv1.3", ...; "" without TLS */
	const char *ptr_reserved[3];
} dthttpd_t;

typedef struct dthttpd_conn {
	/* fixed-width area: offsets 0..63 in every data model */
	uint64_t conn_id;        /* connection id, unique for the life of the server */
	uint64_t elapsed_us;     /* microseconds since the connection was accepted
	                          * (0 at conn-start) */
	uint64_t requests;       /* requests served on it (0 at conn-start) */
	uint16_t lport;          /* local TCP port */
	uint16_t rport;          /* remote TCP port */
	uint32_t ipversion;      /* 4 or 6 */
	uint32_t ptr_size;       /* sizeof(void *) of the process: 4 or 8 */
	uint32_t flags;          /* DTHTTPD_F_TLS, DTHTTPD_F_ABORTED */
	uint64_t fixed_reserved[3];
	/* pointer area: never NULL ("" when absent) */
	const char *laddr;       /* local address, text */
	const char *raddr;       /* remote address, text */
	const char *tls_protocol; /* "" without TLS (and at conn-start: the
	                          * handshake has not happened yet) */
	const char *tls_cipher;  /* "" without TLS */
	const char *sni;         /* the SNI name the client sent, "" if none */
	const char *ptr_reserved[3];
} dthttpd_conn_t;

typedef struct dthttpd_proxy {
	/* fixed-width area: offsets 0..63 in every data model */
	uint64_t id;             /* the request's id */
	uint64_t backend_us;     /* proxy-done: the attempt's own duration, us */
	int32_t status;          /* proxy-done: the attempt's result (an HTTP
	                          * status, or 0 at proxy-start) */
	uint32_t ptr_size;       /* sizeof(void *) of the process: 4 or 8 */
	uint32_t ipversion;      /* 4 or 6: the client's address family */
	uint32_t flags;          /* DTHTTPD_PX_F_*; 0 at proxy-start */
	uint64_t fixed_reserved[4];
	/* pointer area: never NULL ("" when absent) */
	const char *backend;     /* the worker's name, as configured */
	const char *balancer;    /* the balancer's name, "" if none */
	const char *url;         /* the URL sent to the backend */
	const char *laddr;       /* the client connection's local address */
	const char *raddr;       /* the client's address (%a) */
	const char *ptr_reserved[3];
} dthttpd_proxy_t;

#endif /* DTHTTPD_H */
