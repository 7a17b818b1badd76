/*
 * usdt_probes.h: the one header that brings the httpd provider's probe
 * macros into the module.  Code includes this, never the generated
 * httpd_provider.h, and needs no #ifdef at a probe site: it fires every
 * probe through USDT_<PROBE>(all the Linux arguments) and tests
 * USDT_<PROBE>_ENABLED(), which usdt_probe_macros.h (generated from
 * dtrace/mod_usdt.d by dtrace/gen-provider) defines for the route the
 * module is built for: every argument on the sys/sdt.h routes, the record
 * alone on a real DTrace (DESIGN.md: one native argument).
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
#include "usdt_probe_macros.h"

#ifndef _DTRACE_VERSION
#define _DTRACE_VERSION 1
#endif

/*
 * The generated header declares the Linux semaphores with default
 * visibility, so PIC code would load each through the GOT: two dependent
 * loads per check.  They are defined in this module's own probe object, so
 * hidden visibility is true, and it makes each *_ENABLED() one compare of a
 * PC-relative word.  Not on a real DTrace: its -G rewrites the calls to
 * the probe and is-enabled functions it declares, and a hidden (PC-relative)
 * call to them leaves a relocation against an absolute symbol that the
 * link refuses (R_X86_64_NONE with Oracle's dtrace-utils).
 */
#if USDT_PROBES_RECORD_ONLY
#include "httpd_provider.h"
#elif defined(__GNUC__) && !defined(__APPLE__)
#pragma GCC visibility push(hidden)
#include "httpd_provider.h"
#pragma GCC visibility pop
#else
#include "httpd_provider.h"
#endif

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
