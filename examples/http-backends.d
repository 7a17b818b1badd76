#!/usr/sbin/dtrace -s
/*
 * http-backends.d  Apache's backends as mod_proxy sees them, at Ctrl-C: for
 *                  each backend (and balancer member) the attempts, their
 *                  status classes, mod_proxy's own errors, the 5xx
 *                  answers of the backends, and a histogram of the
 *                  attempts' own time.
 *                  DTrace and mod_usdt's httpd provider.
 *
 * USAGE: dtrace -s http-backends.d [PID]     (or ./http-backends.d [PID])
 *
 *   PID  only the Apache server with this parent process id (a child's
 *        pid selects that child); default: every Apache with the module
 *
 * The maps of http-backends.bt, keyed [worker, balancer] (the balancer ""
 * for a plain ProxyPass); see there for what they count.  px_flags 1
 * marks mod_proxy's own errors (the backend not reached, no usable
 * answer, timed out), apart from the 5xx answers of a backend that is up.
 * It needs the D library httpd.d (else add -L DIR).  The record, the one
 * native argument of the proxy, connection and request probes on DTrace,
 * is read as xlate <T *>((dthttpd*_t *)arg0): it needs no probe at compile
 * time (zdefs lets the script start before Apache), and Oracle Linux and
 * macOS have no args[] for USDT probes; at most two translated strings in a
 * clause (dtrace-utils aborts on more).  Oracle Linux matches USDT probes by
 * pid only: there, edit httpd* into httpd$target and give -p CHILD_PID.
 *
 * Example of usage: this machine has no DTrace that traces USDT, so these
 * are the numbers http-backends.bt printed for its sample's traffic;
 * http-backends.d prints the same counts as columns (worker, balancer,
 * count):
 *
 * # bpftrace http-backends.bt
 * @attempts[http://127.0.0.1:39953, balancer://pool]: 1
 * @attempts[http://127.0.0.1:55193, balancer://flaky]: 1
 * @attempts[http://127.0.0.1:55193/, ]: 2
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
	printf("Tracing Apache's backends (mod_usdt). Hit Ctrl-C to end.\n");
}

httpd*:::proxy-done
/$1 == 0 || pid == $1 || ppid == $1/
{
	@attempts[xlate <httpd_proxyinfo_t *>((dthttpd_proxy_t *)arg0)->px_backend, xlate <httpd_proxyinfo_t *>((dthttpd_proxy_t *)arg0)->px_balancer] = count();
}

httpd*:::proxy-done
/$1 == 0 || pid == $1 || ppid == $1/
{
	@classes[xlate <httpd_proxyinfo_t *>((dthttpd_proxy_t *)arg0)->px_backend, xlate <httpd_proxyinfo_t *>((dthttpd_proxy_t *)arg0)->px_balancer, xlate <httpd_proxyinfo_t *>((dthttpd_proxy_t *)arg0)->px_status / 100] = count();
}

httpd*:::proxy-done
/($1 == 0 || pid == $1 || ppid == $1) && (xlate <httpd_proxyinfo_t *>((dthttpd_proxy_t *)arg0)->px_flags & 1)/
{
	@proxy_errors[xlate <httpd_proxyinfo_t *>((dthttpd_proxy_t *)arg0)->px_backend, xlate <httpd_proxyinfo_t *>((dthttpd_proxy_t *)arg0)->px_balancer, xlate <httpd_proxyinfo_t *>((dthttpd_proxy_t *)arg0)->px_status] = count();
}

httpd*:::proxy-done
/($1 == 0 || pid == $1 || ppid == $1) && (xlate <httpd_proxyinfo_t *>((dthttpd_proxy_t *)arg0)->px_flags & 1) == 0 &&
    xlate <httpd_proxyinfo_t *>((dthttpd_proxy_t *)arg0)->px_status >= 500/
{
	@backend_errors[xlate <httpd_proxyinfo_t *>((dthttpd_proxy_t *)arg0)->px_backend, xlate <httpd_proxyinfo_t *>((dthttpd_proxy_t *)arg0)->px_balancer, xlate <httpd_proxyinfo_t *>((dthttpd_proxy_t *)arg0)->px_status] = count();
}

httpd*:::proxy-done
/$1 == 0 || pid == $1 || ppid == $1/
{
	@backend_us[xlate <httpd_proxyinfo_t *>((dthttpd_proxy_t *)arg0)->px_backend, xlate <httpd_proxyinfo_t *>((dthttpd_proxy_t *)arg0)->px_balancer] = quantize(xlate <httpd_proxyinfo_t *>((dthttpd_proxy_t *)arg0)->px_backend_us);
}

/* the second attempt of a request is a retry; request-done forgets it */
httpd*:::proxy-done
/$1 == 0 || pid == $1 || ppid == $1/
{
	tries[xlate <httpd_proxyinfo_t *>((dthttpd_proxy_t *)arg0)->px_id]++;
}

httpd*:::proxy-done
/tries[xlate <httpd_proxyinfo_t *>((dthttpd_proxy_t *)arg0)->px_id] == 2/
{
	@retried[xlate <httpd_proxyinfo_t *>((dthttpd_proxy_t *)arg0)->px_balancer] = count();
}

httpd*:::request-done
/tries[xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_id] != 0/
{
	tries[xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_id] = 0;
}

END
{
	printf("\nAttempts by worker, balancer:\n");
	printa("  %-36s  %-20s %@8d\n", @attempts);
	printf("\nAttempts by worker, balancer, status class (2 is 2xx):\n");
	printa("  %-36s  %-20s %dxx %@8d\n", @classes);
	printf("\nmod_proxy's own errors (503: not reached; 502: no usable answer; 504: timed out) by worker, balancer, status:\n");
	printa("  %-36s  %-20s %d %@8d\n", @proxy_errors);
	printf("\n5xx answers of the backends by worker, balancer, status:\n");
	printa("  %-36s  %-20s %d %@8d\n", @backend_errors);
	printf("\nRequests that tried more than one worker, by balancer:\n");
	printa("  %-36s %@8d\n", @retried);
	printf("\nEach attempt's own time by worker, balancer, microseconds:\n");
	printa("  %s %s\n%@d\n", @backend_us);
}
