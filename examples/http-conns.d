#!/usr/sbin/dtrace -s
/*
 * http-conns.d  Apache's client connections, at Ctrl-C: connections per
 *               second, requests per connection (keep-alive reuse), a
 *               histogram of how long connections lasted, HTTP/1 against
 *               HTTP/2, the TLS protocols, and aborted connections.
 *               DTrace and mod_usdt's httpd provider.
 *
 * USAGE: dtrace -s http-conns.d [PID]     (or ./http-conns.d [PID])
 *
 *   PID  only the Apache server with this parent process id (a child's
 *        pid selects that child); default: every Apache with the module
 *
 * The maps of http-conns.bt; see there for what they count.  Per second
 * is over the whole trace, in whole seconds (normalize()).
 * It needs the D library httpd.d (else add -L DIR).  The record, the one
 * native argument of the proxy, connection and request probes on DTrace,
 * is read as xlate <T *>((dthttpd*_t *)arg0): it needs no probe at compile
 * time (zdefs lets the script start before Apache), and Oracle Linux and
 * macOS have no args[] for USDT probes; at most two translated strings in a
 * clause (dtrace-utils aborts on more).  Oracle Linux matches USDT probes by
 * pid only: there, edit httpd* into httpd$target and give -p CHILD_PID.
 *
 * Example of usage: this machine has no DTrace that traces USDT, so these
 * are the numbers http-conns.bt printed for its sample's traffic;
 * http-conns.d prints them as columns (and the complements: "not aborted",
 * "a request or more"):
 *
 * # bpftrace http-conns.bt
 * @connections[aborted]: 1
 * @connections[all]: 11
 * @connections_by_protocol[HTTP/2]: 2
 * @connections_by_protocol[HTTP/1]: 9
 * @connections_by_tls[TLSv1.3]: 2
 * @connections_by_tls[no TLS]: 9
 * [...]
 *
 * Licensed under the Apache License, Version 2.0.
 *
 * 01-Dec-2026  Created this.
 */

#pragma D option quiet
#pragma D option defaultargs
#pragma D option zdefs

BEGIN
{
	printf("Tracing Apache's connections (mod_usdt). Hit Ctrl-C to end.\n");
	start = timestamp;
}

httpd*:::conn-start
/$1 == 0 || pid == $1 || ppid == $1/
{
	@opened = count();
	@per_second = count();
}

/* the protocol of a connection's requests: 2 once one was HTTP/2 */
httpd*:::request-done
/($1 == 0 || pid == $1 || ppid == $1) && xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_protocol == "HTTP/2.0"/
{
	protocol[xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_conn_id] = 2;
}

httpd*:::request-done
/($1 == 0 || pid == $1 || ppid == $1) && protocol[xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_conn_id] == 0/
{
	protocol[xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_conn_id] = 1;
}

httpd*:::conn-done
/$1 == 0 || pid == $1 || ppid == $1/
{
	this->p = protocol[xlate <httpd_conninfo_t *>((dthttpd_conn_t *)arg0)->cn_id];
	protocol[xlate <httpd_conninfo_t *>((dthttpd_conn_t *)arg0)->cn_id] = 0;
	@connections["all"] = count();
	@connections[xlate <httpd_conninfo_t *>((dthttpd_conn_t *)arg0)->cn_flags & 1 ? "aborted" : "not aborted"] = count();
	@connections[xlate <httpd_conninfo_t *>((dthttpd_conn_t *)arg0)->cn_requests == 0 ? "no request" : "a request or more"] = count();
	@by_protocol[this->p == 2 ? "HTTP/2" : this->p == 1 ? "HTTP/1" : "none"] = count();
	@requests_per_connection = quantize(xlate <httpd_conninfo_t *>((dthttpd_conn_t *)arg0)->cn_requests);
	@connection_us = quantize(xlate <httpd_conninfo_t *>((dthttpd_conn_t *)arg0)->cn_elapsed_us);
	@connection_us_by_protocol[this->p == 2 ? "HTTP/2" : this->p == 1 ? "HTTP/1" : "none"] =
	    quantize(xlate <httpd_conninfo_t *>((dthttpd_conn_t *)arg0)->cn_elapsed_us);
}

httpd*:::conn-done
/$1 == 0 || pid == $1 || ppid == $1/
{
	@by_tls[xlate <httpd_conninfo_t *>((dthttpd_conn_t *)arg0)->cn_flags & 4 ? xlate <httpd_conninfo_t *>((dthttpd_conn_t *)arg0)->cn_tls_protocol : "no TLS"] = count();
}

END
{
	this->ms = (timestamp - start) / 1000000;
	printf("\nConnections opened:");
	printa(" %@d", @opened);
	printf(" in %d ms\n", this->ms);
	normalize(@per_second, this->ms >= 1000 ? this->ms / 1000 : 1);
	printf("Per second (whole seconds):");
	printa(" %@d\n", @per_second);
	printf("\nConnections closed:\n");
	printa("  %-24s %@8d\n", @connections);
	printf("\nClosed, by the protocol of their requests:\n");
	printa("  %-24s %@8d\n", @by_protocol);
	printf("\nClosed, by TLS protocol:\n");
	printa("  %-24s %@8d\n", @by_tls);
	printf("\nRequests per connection (keep-alive reuse):\n");
	printa(@requests_per_connection);
	printf("\nConnection duration, microseconds:\n");
	printa(@connection_us);
	printf("\nConnection duration by protocol, microseconds:\n");
	printa(@connection_us_by_protocol);
}
