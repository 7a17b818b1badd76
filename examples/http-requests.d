#!/usr/sbin/dtrace -s
/*
 * http-requests.d  Every request Apache completes, one line each.
 *                  DTrace and mod_usdt's httpd provider.
 *
 * USAGE: dtrace -s http-requests.d [PID]     (or ./http-requests.d [PID])
 *
 *   PID  only the Apache server with this parent process id (a child's
 *        pid selects that child); default: every Apache with the module
 *
 * The columns are the original mod_usdt's: seconds since tracing began,
 * latency in microseconds, final status, the server's address and port, the
 * client's, method and URI as the client sent it, in the original's formats
 * (a line after 99.999 s is one column wider).  It needs the D library
 * httpd.d (installed by make install where this DTrace reads libraries;
 * else add -L DIR), which translates the record, the probes' one native
 * argument (arg0), to conninfo_t and httpd_rqinfo_t.
 *
 * It runs before Apache does (zdefs): the probes are matched when Apache
 * loads the module.  So it reads xlate <T *>((dthttpd_t *)arg0), which
 * needs no probe at compile time, not args[0] and args[1], which do (and
 * which Oracle Linux and macOS do not have for USDT probes).  Strings are
 * copied in clauses of two: dtrace-utils (Oracle Linux) aborts on more
 * translated strings in one clause.  Oracle Linux matches USDT probes by
 * pid only: there, edit httpd* into httpd$target and give -p CHILD_PID.
 *
 * Example of usage (the original mod_usdt's README):
 *
 * # dtrace -s http-requests.d
 *   time    latency  sta            local                 remote        method uri
 *  1.216   309850us  404      10.99.99.20:80        10.99.99.254:51067  GET    /hello
 *  3.103      646us  404      10.99.99.20:80        10.99.99.254:51068  GET    /world
 *
 * There is no request-start clause: request-done carries the latency,
 * rq_elapsed_us, the time since Apache began reading the request (the %D
 * of the access log).  Timing from request-start instead would need the
 * start time kept by request id (rq_id), never in a self->
 * variable, because under the event MPM request-done can fire on another
 * thread than request-start; and it would still miss requests Apache
 * rejects while reading them (400, 408, 414, 431: a done without a start)
 * and requests already running when tracing began.
 *
 * Licensed under the Apache License, Version 2.0.
 *
 * 22-Nov-2026  Created this, after the original mod_usdt's example.
 */

#pragma D option quiet
#pragma D option defaultargs
#pragma D option zdefs

BEGIN
{
	start = timestamp;
	printf("%6s %10s  %3s %16s%6s %16s%6s  %6s %s\n", "time", "latency",
	    "sta", "local", "", "remote", "", "method", "uri");
}

httpd*:::request-done
/$1 == 0 || pid == $1 || ppid == $1/
{
	this->local = xlate <conninfo_t *>((dthttpd_t *)arg0)->ci_local;
	this->remote = xlate <conninfo_t *>((dthttpd_t *)arg0)->ci_remote;
}

httpd*:::request-done
/$1 == 0 || pid == $1 || ppid == $1/
{
	this->method = xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_method;
	this->uri = xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_uri;
}

httpd*:::request-done
/$1 == 0 || pid == $1 || ppid == $1/
{
	this->ms = (timestamp - start) / 1000000;
	printf("%2d.%03d %8dus  %3d %16s:%-5d %16s:%-5d  %-6s %s\n",
	    this->ms / 1000, this->ms % 1000,
	    xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_elapsed_us,
	    xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_status,
	    this->local, xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_lport,
	    this->remote, xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_rport,
	    this->method, this->uri);
}
