/*
 * mod_usdt.d: the httpd provider, as the build sees it.
 *
 * `dtrace -h` turns this file into the probe macros the module fires
 * (HTTPD_REQUEST_START() and HTTPD_REQUEST_DONE()), and `dtrace -G` into the
 * object that carries the probe table (and, on Linux, the semaphores).  The
 * same file serves illumos/FreeBSD/macOS DTrace, SystemTap's dtrace and the
 * in-tree dtrace/dtrace-shim.
 *
 * Both probes take the same six native arguments, so that tracers which read
 * only arg0..arg5 (bpftrace 0.17) see everything useful:
 *
 *   arg0  uint64_t     request id, unique across all children for the life
 *                      of the server
 *   arg1  int          HTTP status: 0 at request-start, final status (%>s)
 *                      at request-done
 *   arg2  char *       method
 *   arg3  char *       URI as sent by the client, with query string
 *   arg4  uint64_t     microseconds since Apache began reading the request
 *   arg5  dthttpd_t *  the whole record (src/dthttpd.h)
 *
 * DTrace consumers get translated arguments from the D library httpd.d:
 * args[0] is a conninfo_t *, args[1] an httpd_rqinfo_t *.
 *
 * The dummy types and translators below exist only because the D compiler
 * insists on them when it processes a provider file; the real ones are in
 * httpd.d, which is what consumers load.
 */

typedef struct dthttpd { int dummy; } dthttpd_t;
typedef struct conninfo { int dummy; } conninfo_t;
typedef struct httpd_rqinfo { int dummy; } httpd_rqinfo_t;

translator conninfo_t <dthttpd_t *dp> { dummy = 0; };
translator httpd_rqinfo_t <dthttpd_t *dp> { dummy = 0; };

provider httpd {
	/* request line and headers read (post_read_request); once per client request */
	probe request__start(uint64_t id, int status, char *method, char *uri, uint64_t elapsed_us, dthttpd_t *dp) : (conninfo_t *dp, httpd_rqinfo_t *dp);
	/* request finished and logged (log_transaction); once per client request */
	probe request__done(uint64_t id, int status, char *method, char *uri, uint64_t elapsed_us, dthttpd_t *dp) : (conninfo_t *dp, httpd_rqinfo_t *dp);
};

#pragma D attributes Evolving/Evolving/ISA provider httpd provider
#pragma D attributes Private/Private/Unknown provider httpd module
#pragma D attributes Private/Private/Unknown provider httpd function
#pragma D attributes Private/Private/ISA provider httpd name
#pragma D attributes Evolving/Evolving/ISA provider httpd args
