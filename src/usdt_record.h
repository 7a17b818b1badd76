/*
 * usdt_record.h: filling the records (dthttpd_t, dthttpd_conn_t,
 * dthttpd_proxy_t) from a request or a connection.
 *
 * Pure functions of Apache's structures: no I/O, no clock (the caller
 * passes "now"), no allocation but usdt_handler_name's in the pool it is
 * given, so the unit tests can drive them with hand-made requests.  They
 * run only while a probe is enabled.
 */
#ifndef USDT_RECORD_H
#define USDT_RECORD_H

#include "httpd.h"
#include "dthttpd.h"

/* The request the client sent: the first of an internal-redirect chain. */
const request_rec *usdt_client_request(const request_rec *r);

/* The request that produced the response: the last of that chain (%>s). */
const request_rec *usdt_final_request(const request_rec *r);

/* 6 if the address text is IPv6 (it has a ':'), 4 otherwise. */
uint32_t usdt_ip_version(const char *address);

/* Microseconds from start to now, 0 if the clock went backwards. */
uint64_t usdt_elapsed_us(apr_time_t start, apr_time_t now);

/*
 * Fill rec for request r (as the hook received it) with the given id and
 * status.  Absent strings point to empty, which must be a "" the caller keeps
 * alive, in memory the process has touched, until the probe has fired.
 */
void usdt_record_fill(dthttpd_t *rec, const request_rec *r, uint64_t id,
                      int status, apr_time_t now, const char *empty);

/*
 * The name ap_invoke_handler() dispatches r on: r->handler, else the
 * content type without parameters (when trusted), else "default-handler".
 * Not quite %R: ap_invoke_handler() sets r->handler to that name only while
 * the handler runs, so %R logs "-" where none was set (a static file).  The parameters are cut in a copy made in pool.
 */
const char *usdt_handler_name(const request_rec *r, apr_pool_t *pool);

/* Microseconds from start to a timeline mark, 0 for a mark not reached. */
uint64_t usdt_mark_us(apr_time_t start, apr_time_t mark);

/*
 * Fill rec for connection c (the client's: never an HTTP/2 secondary) with
 * its id, age and requests; the TLS strings are left "" (empty).
 */
void usdt_conn_record_fill(dthttpd_conn_t *rec, const conn_rec *c, uint64_t id,
                           uint64_t elapsed_us, uint64_t requests,
                           const char *empty);

/*
 * Fill rec for a backend attempt of request r: its status and flags
 * (DTHTTPD_PX_F_*), and backend, balancer and url as mod_proxy gave them
 * (NULL reads as "").
 */
void usdt_proxy_record_fill(dthttpd_proxy_t *rec, const request_rec *r,
                            uint64_t id, int status, uint32_t flags,
                            uint64_t backend_us, const char *backend,
                            const char *balancer, const char *url,
                            const char *empty);

#endif /* USDT_RECORD_H */
