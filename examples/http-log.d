#!/usr/sbin/dtrace -s
/*
 * http-log.d  Every Apache request as one block, in the order requests
 *             finish: the request line, addresses, each request header,
 *             the handler, each backend attempt, the status, each response
 *             header and the timeline (like varnishlog).
 *             DTrace and mod_usdt's httpd provider.
 *
 * USAGE: dtrace -s http-log.d [MS [CLASS [PID [REVEAL]]]]
 *        (or ./http-log.d [...])
 *
 *   MS      show requests that took at least this many milliseconds
 *           (default 0: every request)
 *   CLASS   show only this status class: 1 to 5 (4 is 4xx); default 0
 *   PID     only the Apache server with this parent process id (a child's
 *           pid selects that child); default 0: every Apache with the module
 *   REVEAL  1 shows the values of Authorization, Proxy-Authorization,
 *           Cookie and Set-Cookie; by default each is "<redacted N bytes>"
 *
 * The same block as http-log.bt prints, line for line.  How: each request
 * gets a speculation at request-start; its header, handler, backend and
 * response lines go into it, and request-done commits it when the request
 * passes the filters (MS, CLASS: known only then) and discards it when not.
 * So a block comes out whole, when its request finished.  A request with
 * no speculation (rejected while Apache read it, begun before tracing, or
 * more than nspec in flight: DTrace then reports "speculation drops")
 * shows with its request-done lines only.  Every line starts with
 * "request ID:", so that blocks committed on several CPUs stay apart.
 *
 * Header names are compared in any letter case; values are cut at
 * strsize - 1 bytes (1023) and a cut one ends in "...", and a redacted
 * value longer than that shows as "<redacted 1023+ bytes>".  The record is
 * read as xlate <T *>((dthttpd*_t *)arg0), the one native argument of the
 * request and proxy probes on DTrace (it needs no probe at compile time:
 * zdefs lets the script start before Apache); the header probes' native
 * arguments are (id, name, value).  At most two translated strings in a
 * clause (dtrace-utils aborts on more).  It needs the D library httpd.d
 * (else add -L DIR).  Oracle Linux matches USDT probes by pid only: there,
 * edit httpd* into httpd$target and give -p CHILD_PID.
 *
 * Example of usage: this machine has no DTrace that traces USDT, so these
 * are the lines http-log.bt printed for a request (examples/http-log.bt.in
 * has the whole block); http-log.d prints the same lines, with the date in
 * %Y form ("2026 Dec  2 00:58:38") on the first, and Status after the
 * TxHeader lines:
 *
 * # bpftrace http-log.bt
 * 00:58:38 request 3: GET /flaky/index.html
 * request 3:   client 127.0.0.1:51794, server 127.0.0.1:58761
 * request 3:   protocol HTTP/1.1, virtual host usdt.test
 * [...]
 * request 3:   Backend http://127.0.0.1:44435 of balancer://flaky: status 503 (mod_proxy's own) in 276 us
 * request 3:   Backend http://127.0.0.1:49829 of balancer://flaky: status 200 in 477 us
 * [...]
 *
 * Licensed under the Apache License, Version 2.0.
 *
 * 01-Dec-2026  Created this.
 */

#pragma D option quiet
#pragma D option defaultargs
#pragma D option zdefs
#pragma D option strsize=1024
#pragma D option nspec=64
#pragma D option specsize=64k

BEGIN
{
	printf("Tracing Apache requests (mod_usdt) of at least %d ms, status class %d (0: all). Hit Ctrl-C to end.\n",
	    $1, $2);
}

httpd*:::request-start
/$3 == 0 || pid == $3 || ppid == $3/
{
	spec[xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_id] = speculation();
}

httpd*:::request-start
/$3 == 0 || pid == $3 || ppid == $3/
{
	speculate(spec[xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_id]);
	printf("%Y request %d: %s %s\n", walltimestamp, xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_id,
	    xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_method, xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_uri);
}

httpd*:::request-start
/$3 == 0 || pid == $3 || ppid == $3/
{
	speculate(spec[xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_id]);
	printf("request %d:   client %s:%d, server %s:%d\n", xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_id,
	    xlate <conninfo_t *>((dthttpd_t *)arg0)->ci_remote, xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_rport,
	    xlate <conninfo_t *>((dthttpd_t *)arg0)->ci_local, xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_lport);
}

httpd*:::request-start
/$3 == 0 || pid == $3 || ppid == $3/
{
	speculate(spec[xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_id]);
	printf("request %d:   protocol %s, virtual host %s\n", xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_id,
	    xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_protocol, xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_vhost);
}

httpd*:::request-start
/$3 == 0 || pid == $3 || ppid == $3/
{
	speculate(spec[xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_id]);
	printf("request %d:   connection %d, request %d on it, TLS %s, Apache pid %d\n",
	    xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_id, xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_conn_id, xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_conn_request,
	    xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_tls_protocol == "" ? "none" : xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_tls_protocol, pid);
}

/*
 * The header probes: native arguments (id, name, value).  A name is a
 * credential header in any letter case if its bytes with the letters
 * lower-cased (c | 0x20; "-" stays "-") spell one; tolower() would say it
 * shorter, but dtrace-utils 2.0 has none.
 */
httpd*:::request-header,
httpd*:::response-header
/spec[arg0] != 0/
{
	this->len = strlen(copyinstr(arg1));
	this->secret = 0;
	this->value = copyinstr(arg2);
	this->vlen = strlen(this->value);
	this->kind = probename == "request-header" ? "RxHeader" : "TxHeader";
}

httpd*:::request-header,
httpd*:::response-header
/spec[arg0] != 0 && $4 != 1 && (this->len == 6 || this->len == 10 || this->len == 13 ||
    this->len == 19)/
{
	this->b = (char *)copyin(arg1, this->len);
	this->secret = (this->len == 6 && (this->b[0] | 0x20) == 'c' &&
	    (this->b[1] | 0x20) == 'o' &&
	    (this->b[2] | 0x20) == 'o' &&
	    (this->b[3] | 0x20) == 'k' &&
	    (this->b[4] | 0x20) == 'i' &&
	    (this->b[5] | 0x20) == 'e') ||
	    (this->len == 10 && (this->b[0] | 0x20) == 's' &&
	    (this->b[1] | 0x20) == 'e' &&
	    (this->b[2] | 0x20) == 't' &&
	    (this->b[3] | 0x20) == '-' &&
	    (this->b[4] | 0x20) == 'c' &&
	    (this->b[5] | 0x20) == 'o' &&
	    (this->b[6] | 0x20) == 'o' &&
	    (this->b[7] | 0x20) == 'k' &&
	    (this->b[8] | 0x20) == 'i' &&
	    (this->b[9] | 0x20) == 'e') ||
	    (this->len == 13 && (this->b[0] | 0x20) == 'a' &&
	    (this->b[1] | 0x20) == 'u' &&
	    (this->b[2] | 0x20) == 't' &&
	    (this->b[3] | 0x20) == 'h' &&
	    (this->b[4] | 0x20) == 'o' &&
	    (this->b[5] | 0x20) == 'r' &&
	    (this->b[6] | 0x20) == 'i' &&
	    (this->b[7] | 0x20) == 'z' &&
	    (this->b[8] | 0x20) == 'a' &&
	    (this->b[9] | 0x20) == 't' &&
	    (this->b[10] | 0x20) == 'i' &&
	    (this->b[11] | 0x20) == 'o' &&
	    (this->b[12] | 0x20) == 'n') ||
	    (this->len == 19 && (this->b[0] | 0x20) == 'p' &&
	    (this->b[1] | 0x20) == 'r' &&
	    (this->b[2] | 0x20) == 'o' &&
	    (this->b[3] | 0x20) == 'x' &&
	    (this->b[4] | 0x20) == 'y' &&
	    (this->b[5] | 0x20) == '-' &&
	    (this->b[6] | 0x20) == 'a' &&
	    (this->b[7] | 0x20) == 'u' &&
	    (this->b[8] | 0x20) == 't' &&
	    (this->b[9] | 0x20) == 'h' &&
	    (this->b[10] | 0x20) == 'o' &&
	    (this->b[11] | 0x20) == 'r' &&
	    (this->b[12] | 0x20) == 'i' &&
	    (this->b[13] | 0x20) == 'z' &&
	    (this->b[14] | 0x20) == 'a' &&
	    (this->b[15] | 0x20) == 't' &&
	    (this->b[16] | 0x20) == 'i' &&
	    (this->b[17] | 0x20) == 'o' &&
	    (this->b[18] | 0x20) == 'n');
}

httpd*:::request-header,
httpd*:::response-header
/spec[arg0] != 0 && this->secret/
{
	speculate(spec[arg0]);
	printf("request %d:   %s %s: <redacted %d%s bytes>\n", arg0, this->kind,
	    copyinstr(arg1), this->vlen, this->vlen >= 1023 ? "+" : "");
}

httpd*:::request-header,
httpd*:::response-header
/spec[arg0] != 0 && !this->secret/
{
	speculate(spec[arg0]);
	printf("request %d:   %s %s: %s%s\n", arg0, this->kind, copyinstr(arg1),
	    this->value, this->vlen >= 1023 ? "..." : "");
}

httpd*:::request-handler
/spec[xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_id] != 0/
{
	speculate(spec[xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_id]);
	printf("request %d:   Handler %s at %d us\n", xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_id,
	    xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_handler, xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_elapsed_us);
}

httpd*:::proxy-done
/spec[xlate <httpd_proxyinfo_t *>((dthttpd_proxy_t *)arg0)->px_id] != 0/
{
	this->balancer = xlate <httpd_proxyinfo_t *>((dthttpd_proxy_t *)arg0)->px_balancer;
	this->own = (xlate <httpd_proxyinfo_t *>((dthttpd_proxy_t *)arg0)->px_flags & 1) ? " (mod_proxy's own)" : "";
}

httpd*:::proxy-done
/spec[xlate <httpd_proxyinfo_t *>((dthttpd_proxy_t *)arg0)->px_id] != 0 && this->balancer != ""/
{
	speculate(spec[xlate <httpd_proxyinfo_t *>((dthttpd_proxy_t *)arg0)->px_id]);
	printf("request %d:   Backend %s of %s: status %d%s in %d us\n", xlate <httpd_proxyinfo_t *>((dthttpd_proxy_t *)arg0)->px_id,
	    xlate <httpd_proxyinfo_t *>((dthttpd_proxy_t *)arg0)->px_backend, this->balancer,
	    xlate <httpd_proxyinfo_t *>((dthttpd_proxy_t *)arg0)->px_status, this->own, xlate <httpd_proxyinfo_t *>((dthttpd_proxy_t *)arg0)->px_backend_us);
}

httpd*:::proxy-done
/spec[xlate <httpd_proxyinfo_t *>((dthttpd_proxy_t *)arg0)->px_id] != 0 && this->balancer == ""/
{
	speculate(spec[xlate <httpd_proxyinfo_t *>((dthttpd_proxy_t *)arg0)->px_id]);
	printf("request %d:   Backend %s: status %d%s in %d us\n", xlate <httpd_proxyinfo_t *>((dthttpd_proxy_t *)arg0)->px_id,
	    xlate <httpd_proxyinfo_t *>((dthttpd_proxy_t *)arg0)->px_backend, xlate <httpd_proxyinfo_t *>((dthttpd_proxy_t *)arg0)->px_status, this->own, xlate <httpd_proxyinfo_t *>((dthttpd_proxy_t *)arg0)->px_backend_us);
}

/* a request without a speculation: what request-done knows, unbuffered */
httpd*:::request-done
/spec[xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_id] == 0 && ($3 == 0 || pid == $3 || ppid == $3) && (xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_elapsed_us >= $1 * 1000 && ($2 == 0 || xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_status / 100 == $2))/
{
	printf("%Y request %d: %s %s\n", walltimestamp, xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_id,
	    xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_method, xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_uri);
}

httpd*:::request-done
/spec[xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_id] == 0 && ($3 == 0 || pid == $3 || ppid == $3) && (xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_elapsed_us >= $1 * 1000 && ($2 == 0 || xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_status / 100 == $2))/
{
	printf("request %d:   client %s:%d, server %s:%d\n", xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_id,
	    xlate <conninfo_t *>((dthttpd_t *)arg0)->ci_remote, xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_rport,
	    xlate <conninfo_t *>((dthttpd_t *)arg0)->ci_local, xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_lport);
}

httpd*:::request-done
/spec[xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_id] == 0 && ($3 == 0 || pid == $3 || ppid == $3) && (xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_elapsed_us >= $1 * 1000 && ($2 == 0 || xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_status / 100 == $2))/
{
	printf("request %d:   Status %d (first %d), %d bytes sent, %d received, %s\n",
	    xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_id, xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_status, xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_status_first, xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_bytes_sent,
	    xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_bytes_received, xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_content_type);
	printf("request %d:   Timeline handler %d us, first byte %d us, last byte %d us, done %d us\n",
	    xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_id, xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_handler_us, xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_first_byte_us,
	    xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_last_byte_us, xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_elapsed_us);
}

/*
 * request-done: the status before the response headers, which fired just
 * before it, cannot be: it goes into the block after them (the order of
 * http-log.bt's block is Status, TxHeader; here TxHeader, Status).
 */
httpd*:::request-done
/spec[xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_id] != 0/
{
	speculate(spec[xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_id]);
	printf("request %d:   Status %d (first %d), %d bytes sent, %d received, %s\n",
	    xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_id, xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_status, xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_status_first, xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_bytes_sent,
	    xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_bytes_received, xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_content_type);
}

httpd*:::request-done
/spec[xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_id] != 0/
{
	speculate(spec[xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_id]);
	printf("request %d:   Timeline handler %d us, first byte %d us, last byte %d us, done %d us\n",
	    xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_id, xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_handler_us, xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_first_byte_us,
	    xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_last_byte_us, xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_elapsed_us);
}

httpd*:::request-done
/spec[xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_id] != 0 && (xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_elapsed_us >= $1 * 1000 && ($2 == 0 || xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_status / 100 == $2))/
{
	commit(spec[xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_id]);
}

httpd*:::request-done
/spec[xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_id] != 0 && !(xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_elapsed_us >= $1 * 1000 && ($2 == 0 || xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_status / 100 == $2))/
{
	discard(spec[xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_id]);
}

httpd*:::request-done
/spec[xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_id] != 0/
{
	spec[xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_id] = 0;
}

