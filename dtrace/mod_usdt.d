/*
 * mod_usdt.d: the httpd provider, as the build sees it.
 *
 * `dtrace -h` turns this file into the probe macros the module fires
 * (HTTPD_REQUEST_START(), ..., through the wrappers USDT_REQUEST_START(), ...
 * of src/usdt_probes.h), and `dtrace -G` into the object that carries the
 * probe table (and, on Linux, the semaphores).  The same file serves
 * illumos/FreeBSD/macOS DTrace, SystemTap's dtrace and the in-tree
 * dtrace/dtrace-shim.
 *
 * A probe with a record takes six native arguments, the record last, so
 * that tracers which read only arg0..arg5 (bpftrace 0.17) see everything
 * useful.  The request probes:
 *
 *   arg0  uint64_t     request id, unique across all children for the life
 *                      of the server
 *   arg1  int          HTTP status: 0 at request-start, final status (%>s)
 *                      at request-done
 *   arg2  char *       method (request-handler: the name Apache dispatches on)
 *   arg3  char *       URI as sent by the client, with query string
 *                      (request-handler: the URI after mapping)
 *   arg4  uint64_t     microseconds since Apache began reading the request
 *   arg5  dthttpd_t *  the whole record (src/dthttpd.h)
 *
 * The connection probes pass a dthttpd_conn_t *, the proxy probes a
 * dthttpd_proxy_t *; the header and child probes have native arguments
 * only.  Strings are never NULL ("" when absent).
 *
 * DTrace consumers get translated arguments from the D library httpd.d:
 * args[0] is a conninfo_t *, args[1] an httpd_rqinfo_t *, httpd_conninfo_t *
 * or httpd_proxyinfo_t *.
 *
 * The dummy types and translators below exist only because the D compiler
 * insists on them when it processes a provider file; the real ones are in
 * httpd.d, which is what consumers load.
 */

typedef struct dthttpd { int dummy; } dthttpd_t;
typedef struct dthttpd_conn { int dummy; } dthttpd_conn_t;
typedef struct dthttpd_proxy { int dummy; } dthttpd_proxy_t;
typedef struct conninfo { int dummy; } conninfo_t;
typedef struct httpd_rqinfo { int dummy; } httpd_rqinfo_t;
typedef struct httpd_conninfo { int dummy; } httpd_conninfo_t;
typedef struct httpd_proxyinfo { int dummy; } httpd_proxyinfo_t;

translator conninfo_t <dthttpd_t *dp> { dummy = 0; };
translator httpd_rqinfo_t <dthttpd_t *dp> { dummy = 0; };
translator conninfo_t <dthttpd_conn_t *dp> { dummy = 0; };
translator httpd_conninfo_t <dthttpd_conn_t *dp> { dummy = 0; };
translator conninfo_t <dthttpd_proxy_t *dp> { dummy = 0; };
translator httpd_proxyinfo_t <dthttpd_proxy_t *dp> { dummy = 0; };

provider httpd {
	/* request line and headers read (post_read_request); once per client request */
	probe request__start(uint64_t id, int status, char *method, char *uri, uint64_t elapsed_us, dthttpd_t *dp) : (conninfo_t *dp, httpd_rqinfo_t *dp);
	/* one request header as Apache holds it (duplicates merged), right after request-start */
	probe request__header(uint64_t id, char *name, char *value);
	/* a handler is about to run for the request or an internal redirect of it (insert_filter); arg2 the name Apache dispatches on (r->handler, else the content type), arg3 the URI after mapping */
	probe request__handler(uint64_t id, int status, char *handler, char *uri, uint64_t elapsed_us, dthttpd_t *dp) : (conninfo_t *dp, httpd_rqinfo_t *dp);
	/* mod_proxy calls a backend (one per attempt); arg2 the worker's name, arg3 the balancer's ("" if none) */
	probe proxy__start(uint64_t id, int status, char *backend, char *balancer, uint64_t elapsed_us, dthttpd_proxy_t *dp) : (conninfo_t *dp, httpd_proxyinfo_t *dp);
	/* that backend attempt is over; arg1 its status, arg4 its duration in microseconds */
	probe proxy__done(uint64_t id, int status, char *backend, char *balancer, uint64_t backend_us, dthttpd_proxy_t *dp) : (conninfo_t *dp, httpd_proxyinfo_t *dp);
	/* one response header of the final request (headers_out, then err_headers_out), just before request-done */
	probe response__header(uint64_t id, char *name, char *value);
	/* request finished and logged (log_transaction); once per client request */
	probe request__done(uint64_t id, int status, char *method, char *uri, uint64_t elapsed_us, dthttpd_t *dp) : (conninfo_t *dp, httpd_rqinfo_t *dp);
	/* a client connection begins (pre_connection); not for HTTP/2's secondary connections */
	probe conn__start(uint64_t conn_id, uint64_t requests, char *raddr, char *laddr, uint64_t elapsed_us, dthttpd_conn_t *dp) : (conninfo_t *dp, httpd_conninfo_t *dp);
	/* that connection is closed (its pool is cleaned up); arg1 requests served on it, arg4 its age in microseconds */
	probe conn__done(uint64_t conn_id, uint64_t requests, char *raddr, char *laddr, uint64_t elapsed_us, dthttpd_conn_t *dp) : (conninfo_t *dp, httpd_conninfo_t *dp);
	/* a child process starts serving (child_init): its pid and generation */
	probe child__start(int pid, int generation);
	/* that child exits (its pool is cleaned up); arg2 the requests it served while child-done was traced */
	probe child__done(int pid, int generation, uint64_t requests);
};

#pragma D attributes Evolving/Evolving/ISA provider httpd provider
#pragma D attributes Private/Private/Unknown provider httpd module
#pragma D attributes Private/Private/Unknown provider httpd function
#pragma D attributes Private/Private/ISA provider httpd name
#pragma D attributes Evolving/Evolving/ISA provider httpd args
