/*
 * usdt_record.h: filling the dthttpd_t record from a request.
 *
 * Pure functions of the request_rec: no allocation, no I/O, no clock (the
 * caller passes "now"), so the unit tests can drive them with hand-made
 * requests.  They run only while a probe is enabled.
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

#endif /* USDT_RECORD_H */
