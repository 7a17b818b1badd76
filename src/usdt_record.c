/*
 * usdt_record.c: filling the probe record (see usdt_record.h).
 *
 * Licensed under the Apache License, Version 2.0.
 */
#include "usdt_record.h"

#include <stddef.h>
#include <string.h>

#include "apr_strings.h"
#include "apr_tables.h"

/* The layout promises of dthttpd.h, checked by the compiler (C99 has no
 * _Static_assert): a negative array size fails the build. */
#define USDT_LAYOUT_CHECK(name, cond) typedef char usdt_layout_##name[(cond) ? 1 : -1]
USDT_LAYOUT_CHECK(fixed_area_size,
                  offsetof(dthttpd_t, laddr) == DTHTTPD_FIXED_SIZE);
USDT_LAYOUT_CHECK(status_after_u64s, offsetof(dthttpd_t, status) == 32);
USDT_LAYOUT_CHECK(reserve_is_8_aligned,
                  offsetof(dthttpd_t, fixed_reserved) % 8 == 0);
USDT_LAYOUT_CHECK(conn_fixed_area_size,
                  offsetof(dthttpd_conn_t, laddr) == DTHTTPD_CONN_FIXED_SIZE);
USDT_LAYOUT_CHECK(proxy_fixed_area_size,
                  offsetof(dthttpd_proxy_t, backend) == DTHTTPD_PROXY_FIXED_SIZE);

const request_rec *usdt_client_request(const request_rec *r)
{
	while (r->prev != NULL)
		r = r->prev;
	return r;
}

const request_rec *usdt_final_request(const request_rec *r)
{
	while (r->next != NULL)
		r = r->next;
	return r;
}

uint32_t usdt_ip_version(const char *address)
{
	/* APR prints v4-mapped IPv6 peers as plain IPv4, so the text, not the
	 * socket's family, tells what the operator will see. */
	return (address != NULL && strchr(address, ':') != NULL) ? 6 : 4;
}

uint64_t usdt_elapsed_us(apr_time_t start, apr_time_t now)
{
	return now > start ? (uint64_t)(now - start) : 0;
}

/*
 * A tracer reads user memory without faulting pages in, so a string in a
 * page this process never touched reads as "".  Pool strings were written by
 * the server; constants such as mod_http2's "HTTP/2.0" may not have been
 * read yet.  One load per string makes sure.
 */
static const char *usdt_text(const char *s, const char *empty)
{
	if (s == NULL)
		return empty;
	(void)*(const volatile char *)s;
	return s;
}

static apr_port_t usdt_port(const apr_sockaddr_t *sa)
{
	return sa != NULL ? sa->port : 0;
}

void usdt_record_fill(dthttpd_t *rec, const request_rec *r, uint64_t id,
                      int status, apr_time_t now, const char *empty)
{
	const request_rec *client = usdt_client_request(r);
	const request_rec *final = usdt_final_request(r);
	const conn_rec *c = r->connection;
	const char *raddr = r->useragent_ip != NULL ? r->useragent_ip
	                                            : c->client_ip;
	const apr_sockaddr_t *rsa = r->useragent_addr != NULL ? r->useragent_addr
	                                                      : c->client_addr;

	memset(rec, 0, sizeof(*rec));
	rec->id = id;
	rec->elapsed_us = usdt_elapsed_us(client->request_time, now);
	rec->bytes_received = final->read_length > 0 ? (uint64_t)final->read_length : 0;
	/* As %B: a HEAD or a 304 counts bytes_sent but sends no body. */
	rec->bytes_sent = final->sent_bodyct && final->bytes_sent > 0
	                  ? (uint64_t)final->bytes_sent : 0;
	rec->status = status;
	rec->lport = usdt_port(c->local_addr);
	rec->rport = usdt_port(rsa);
	rec->ipversion = usdt_ip_version(raddr);
	rec->ptr_size = (uint32_t)sizeof(void *);

	rec->laddr = usdt_text(c->local_ip, empty);
	rec->raddr = usdt_text(raddr, empty);
	rec->method = usdt_text(client->method, empty);
	rec->uri = usdt_text(client->unparsed_uri, empty);
	rec->agent = usdt_text(client->headers_in != NULL
	                       ? apr_table_get(client->headers_in, "User-Agent")
	                       : NULL, empty);
	rec->protocol = usdt_text(client->protocol, empty);
	rec->host = usdt_text(client->hostname, empty);
	rec->vhost = usdt_text(final->server != NULL ? final->server->server_hostname
	                                             : NULL, empty);

	/* What the request itself says; the connection's id and position,
	 * the timeline, the handler and TLS come from the module's state. */
	rec->status_first = client->status;
	if (c->aborted)
		rec->flags |= DTHTTPD_F_ABORTED;
	if (c->keepalive == AP_CONN_KEEPALIVE)
		rec->flags |= DTHTTPD_F_KEEPALIVE;
	if (final != client)
		rec->flags |= DTHTTPD_F_REDIRECT;
	rec->handler = empty;
	rec->filename = usdt_text(final->filename, empty);
	rec->user = usdt_text(final->user, empty);
	rec->content_type = usdt_text(final->content_type, empty);
	rec->tls_protocol = empty;
}

const char *usdt_handler_name(const request_rec *r, apr_pool_t *pool)
{
	const char *type = r->content_type;
	const char *semi;

	if (r->handler != NULL)
		return r->handler;
	/* As ap_invoke_handler(): only a type the server set itself counts. */
	if (type == NULL || !AP_REQUEST_IS_TRUSTED_CT(r))
		return usdt_text("default-handler", "");
	semi = strchr(type, ';');
	if (semi == NULL)
		return type;
	while (semi > type && semi[-1] == ' ')
		semi--;
	return apr_pstrmemdup(pool, type, (apr_size_t)(semi - type));
}

uint64_t usdt_mark_us(apr_time_t start, apr_time_t mark)
{
	/* A mark at the very start still counts as reached. */
	if (mark == 0)
		return 0;
	return mark > start ? (uint64_t)(mark - start) : 1;
}

void usdt_conn_record_fill(dthttpd_conn_t *rec, const conn_rec *c, uint64_t id,
                           uint64_t elapsed_us, uint64_t requests,
                           const char *empty)
{
	memset(rec, 0, sizeof(*rec));
	rec->conn_id = id;
	rec->elapsed_us = elapsed_us;
	rec->requests = requests;
	rec->lport = usdt_port(c->local_addr);
	rec->rport = usdt_port(c->client_addr);
	rec->ipversion = usdt_ip_version(c->client_ip);
	rec->ptr_size = (uint32_t)sizeof(void *);
	if (c->aborted)
		rec->flags |= DTHTTPD_F_ABORTED;
	rec->laddr = usdt_text(c->local_ip, empty);
	rec->raddr = usdt_text(c->client_ip, empty);
	rec->tls_protocol = empty;
	rec->tls_cipher = empty;
	rec->sni = empty;
}

void usdt_proxy_record_fill(dthttpd_proxy_t *rec, const request_rec *r,
                            uint64_t id, int status, uint32_t flags,
                            uint64_t backend_us, const char *backend,
                            const char *balancer, const char *url,
                            const char *empty)
{
	const conn_rec *c = r->connection;
	const char *raddr = r->useragent_ip != NULL ? r->useragent_ip
	                                            : c->client_ip;

	memset(rec, 0, sizeof(*rec));
	rec->id = id;
	rec->backend_us = backend_us;
	rec->status = status;
	rec->ptr_size = (uint32_t)sizeof(void *);
	rec->ipversion = usdt_ip_version(raddr);
	rec->flags = flags;
	rec->backend = usdt_text(backend, empty);
	rec->balancer = usdt_text(balancer, empty);
	rec->url = usdt_text(url, empty);
	rec->laddr = usdt_text(c->local_ip, empty);
	rec->raddr = usdt_text(raddr, empty);
}
