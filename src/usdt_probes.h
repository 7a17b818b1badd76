/*
 * usdt_probes.h: the one header that brings the httpd provider's probe
 * macros into the module.  Code includes this, never the generated
 * httpd_provider.h, and needs no #ifdef at a probe site.
 *
 * Include it after the Apache headers: ap_config.h does
 * "#undef _DTRACE_VERSION" unless Apache itself was built with DTrace, and
 * the header that a real DTrace generates turns every probe macro into a
 * no-op when _DTRACE_VERSION is not set.  We set it again here, after
 * Apache had its say.  SystemTap's and dtrace-shim's headers do not look at
 * it, so this is harmless for them.
 */
#ifndef USDT_PROBES_H
#define USDT_PROBES_H

#include "dthttpd.h"

#ifndef _DTRACE_VERSION
#define _DTRACE_VERSION 1
#endif

/*
 * The generated header declares the Linux semaphores with default
 * visibility, so PIC code would load each through the GOT: two dependent
 * loads per check.  They are defined in this module's own probe object, so
 * hidden visibility is true, and it makes each *_ENABLED() one compare of a
 * PC-relative word.
 */
#if defined(__GNUC__) && !defined(__APPLE__)
#pragma GCC visibility push(hidden)
#include "httpd_provider.h"
#pragma GCC visibility pop
#else
#include "httpd_provider.h"
#endif

/*
 * The probe wrappers: module code fires every probe through USDT_<PROBE>()
 * with all of its Linux arguments and tests USDT_<PROBE>_ENABLED(), never
 * the generated HTTPD_* macros.  For now they are plain forwards (Linux:
 * six native arguments); the DTrace route (one native argument, the record)
 * will generate them from dtrace/mod_usdt.d instead.
 */
#define USDT_REQUEST_START_ENABLED()    HTTPD_REQUEST_START_ENABLED()
#define USDT_REQUEST_START(a0, a1, a2, a3, a4, rec) \
	HTTPD_REQUEST_START(a0, a1, a2, a3, a4, rec)
#define USDT_REQUEST_HEADER_ENABLED()   HTTPD_REQUEST_HEADER_ENABLED()
#define USDT_REQUEST_HEADER(id, name, value) \
	HTTPD_REQUEST_HEADER(id, name, value)
#define USDT_REQUEST_HANDLER_ENABLED()  HTTPD_REQUEST_HANDLER_ENABLED()
#define USDT_REQUEST_HANDLER(a0, a1, a2, a3, a4, rec) \
	HTTPD_REQUEST_HANDLER(a0, a1, a2, a3, a4, rec)
#define USDT_PROXY_START_ENABLED()      HTTPD_PROXY_START_ENABLED()
#define USDT_PROXY_START(a0, a1, a2, a3, a4, rec) \
	HTTPD_PROXY_START(a0, a1, a2, a3, a4, rec)
#define USDT_PROXY_DONE_ENABLED()       HTTPD_PROXY_DONE_ENABLED()
#define USDT_PROXY_DONE(a0, a1, a2, a3, a4, rec) \
	HTTPD_PROXY_DONE(a0, a1, a2, a3, a4, rec)
#define USDT_RESPONSE_HEADER_ENABLED()  HTTPD_RESPONSE_HEADER_ENABLED()
#define USDT_RESPONSE_HEADER(id, name, value) \
	HTTPD_RESPONSE_HEADER(id, name, value)
#define USDT_REQUEST_DONE_ENABLED()     HTTPD_REQUEST_DONE_ENABLED()
#define USDT_REQUEST_DONE(a0, a1, a2, a3, a4, rec) \
	HTTPD_REQUEST_DONE(a0, a1, a2, a3, a4, rec)
#define USDT_CONN_START_ENABLED()       HTTPD_CONN_START_ENABLED()
#define USDT_CONN_START(a0, a1, a2, a3, a4, rec) \
	HTTPD_CONN_START(a0, a1, a2, a3, a4, rec)
#define USDT_CONN_DONE_ENABLED()        HTTPD_CONN_DONE_ENABLED()
#define USDT_CONN_DONE(a0, a1, a2, a3, a4, rec) \
	HTTPD_CONN_DONE(a0, a1, a2, a3, a4, rec)
#define USDT_CHILD_START_ENABLED()      HTTPD_CHILD_START_ENABLED()
#define USDT_CHILD_START(pid, generation) HTTPD_CHILD_START(pid, generation)
#define USDT_CHILD_DONE_ENABLED()       HTTPD_CHILD_DONE_ENABLED()
#define USDT_CHILD_DONE(pid, generation, requests) \
	HTTPD_CHILD_DONE(pid, generation, requests)

#if defined(__GNUC__)
#define USDT_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define USDT_COLD __attribute__((noinline, cold))
/* Functions shared between the module's files, not exported: a call
 * between them needs no PLT. */
#define USDT_HIDDEN __attribute__((visibility("hidden")))
#else
#define USDT_HIDDEN
#define USDT_UNLIKELY(x) (x)
#define USDT_COLD
#endif

#endif /* USDT_PROBES_H */
