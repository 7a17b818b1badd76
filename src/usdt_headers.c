/*
 * usdt_headers.c: request-header and response-header, one probe per header
 * as Apache holds it (its tables merged duplicates of request headers while
 * reading them; response headers are as the modules set them).
 *
 * Licensed under the Apache License, Version 2.0.
 */
#include "httpd.h"
#include "apr_tables.h"

#include "usdt_state.h"
#include "usdt_probes.h"    /* last: after ap_config.h, see the header */

/* Table strings live in the request's pool, which the server wrote: a
 * tracer can read them.  An entry may have a NULL value. */
static char *usdt_header_text(const char *s, char *empty)
{
	return s != NULL ? (char *)s : empty;
}

void usdt_fire_request_headers(uint64_t id, const request_rec *r)
{
	const apr_array_header_t *arr;
	const apr_table_entry_t *e;
	char empty[1] = "";
	int i;

	if (r->headers_in == NULL)
		return;
	arr = apr_table_elts(r->headers_in);
	e = (const apr_table_entry_t *)arr->elts;
	for (i = 0; i < arr->nelts; i++)
		USDT_REQUEST_HEADER(id, usdt_header_text(e[i].key, empty),
		                    usdt_header_text(e[i].val, empty));
}

static void usdt_fire_table(uint64_t id, const apr_table_t *t, char *empty)
{
	const apr_array_header_t *arr;
	const apr_table_entry_t *e;
	int i;

	if (t == NULL)
		return;
	arr = apr_table_elts(t);
	e = (const apr_table_entry_t *)arr->elts;
	for (i = 0; i < arr->nelts; i++)
		USDT_RESPONSE_HEADER(id, usdt_header_text(e[i].key, empty),
		                     usdt_header_text(e[i].val, empty));
}

/* r is the final request of the chain: the one whose response was sent. */
void usdt_fire_response_headers(uint64_t id, const request_rec *r)
{
	char empty[1] = "";

	usdt_fire_table(id, r->headers_out, empty);
	usdt_fire_table(id, r->err_headers_out, empty);
}
