/*
 * dthttpd.h: the record that mod_usdt passes as the sixth argument (arg5) of
 * every httpd provider probe.
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
 * gen-layout reads the struct below line by line: keep one member per line,
 * written "type name;" or "type name[count];", with the types
 * uint64_t, int32_t, uint32_t, uint16_t and "const char *" only.
 *
 * Licensed under the Apache License, Version 2.0.
 */
#ifndef DTHTTPD_H
#define DTHTTPD_H

#include <stdint.h>

#define DTHTTPD_FIXED_SIZE 128

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
	uint64_t fixed_reserved[10];
	/* pointer area: NUL-terminated strings, never NULL ("" when absent) */
	const char *laddr;       /* local address, text */
	const char *raddr;       /* remote address, text (%a) */
	const char *method;      /* request method */
	const char *uri;         /* URI as sent by the client, with query string */
	const char *agent;       /* User-Agent header */
	const char *protocol;    /* "HTTP/1.1", "HTTP/2.0", ... */
	const char *host;        /* Host header (or :authority) as parsed */
	const char *vhost;       /* ServerName of the virtual host that served it */
	const char *ptr_reserved[8];
} dthttpd_t;

#endif /* DTHTTPD_H */
