#!/usr/sbin/dtrace -s
/*
 * http-requests-bylatency.d  Apache request latency as a histogram, in
 *                            microseconds, printed at Ctrl-C.
 *                            DTrace and mod_usdt's httpd provider.
 *
 * USAGE: dtrace -s http-requests-bylatency.d [PID]
 *        (or ./http-requests-bylatency.d [PID])
 *
 *   PID  only the Apache server with this parent process id (a child's
 *        pid selects that child); default: every Apache with the module
 *
 * It needs the D library httpd.d (installed by make install where this
 * DTrace reads libraries; else add -L DIR), which translates the record,
 * the probe's one native argument (arg0), to httpd_rqinfo_t.  It can start
 * before Apache (zdefs), so it reads xlate <httpd_rqinfo_t *>((dthttpd_t *)
 * arg0), which needs no probe at compile time, not args[1] (which Oracle
 * Linux and macOS do not have for USDT probes either).  Oracle Linux
 * matches USDT probes by pid only: there, edit httpd* into httpd$target and
 * give -p CHILD_PID.
 *
 * Example of usage (the original mod_usdt's README):
 *
 * # dtrace -s http-requests-bylatency.d
 * Tracing. Hit CTRL-C to stop.
 * ^C
 *
 *   microseconds
 *
 *            value  ------------- Distribution ------------- count
 *               64 |                                         0
 *              128 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@       3367
 *              256 |@@@@@@                                   578
 *              512 |@                                        51
 *             1024 |                                         3
 *             2048 |                                         0
 *
 * Latency is rq_elapsed_us of request-done, the time since Apache began
 * reading the request (the %D of the access log): no request-start clause,
 * so requests Apache rejects while reading them (a done without a start)
 * count too, and nothing is kept per thread, which the event MPM would get
 * wrong (request-done can fire on another thread than request-start).
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
	printf("Tracing. Hit CTRL-C to stop.\n");
}

httpd*:::request-done
/$1 == 0 || pid == $1 || ppid == $1/
{
	@["microseconds"] = quantize(
	    xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_elapsed_us);
}
