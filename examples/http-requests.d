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
 * httpd.d (installed in /usr/lib/dtrace; else add -L DIR), which gives the
 * translated arguments args[0] (conninfo_t) and args[1] (httpd_rqinfo_t).
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
 * start time kept by request id (args[1]->rq_id), never in a self->
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

BEGIN
{
	start = timestamp;
	printf("%6s %10s  %3s %16s%6s %16s%6s  %6s %s\n", "time", "latency",
	    "sta", "local", "", "remote", "", "method", "uri");
}

httpd*:::request-done
/$1 == 0 || pid == $1 || ppid == $1/
{
	this->ms = (timestamp - start) / 1000000;
	printf("%2d.%03d %8dus  %3d %16s:%-5d %16s:%-5d  %-6s %s\n",
	    this->ms / 1000, this->ms % 1000, args[1]->rq_elapsed_us,
	    args[1]->rq_status, args[0]->ci_local, args[1]->rq_lport,
	    args[0]->ci_remote, args[1]->rq_rport, args[1]->rq_method,
	    args[1]->rq_uri);
}
