/*
 * usdt_child.c: child-start and child-done.
 *
 * child_init runs once in each child process: child-start, and a cleanup
 * of the child's pool, which is destroyed when the child exits, for
 * child-done.  The requests child-done reports are those the child logged
 * while child-done was traced (counting them costs nothing otherwise).
 *
 * Licensed under the Apache License, Version 2.0.
 */
#include <unistd.h>

#include "httpd.h"
#include "ap_mpm.h"
#include "apr_atomic.h"

#include "usdt_state.h"
#include "usdt_probes.h"    /* last: after ap_config.h, see the header */

static int usdt_child_generation;
static volatile apr_uint32_t usdt_child_requests;

static apr_status_t usdt_child_cleanup(void *data)
{
	(void)data;
	if (USDT_CHILD_DONE_ENABLED())
		USDT_CHILD_DONE((int)getpid(), usdt_child_generation,
		                (uint64_t)apr_atomic_read32(&usdt_child_requests));
	return APR_SUCCESS;
}

void usdt_child_begin(apr_pool_t *pchild)
{
	int generation = 0;

	if (ap_mpm_query(AP_MPMQ_GENERATION, &generation) == APR_SUCCESS)
		usdt_child_generation = generation;
	apr_pool_cleanup_register(pchild, NULL, usdt_child_cleanup,
	                          apr_pool_cleanup_null);
	if (USDT_CHILD_START_ENABLED())
		USDT_CHILD_START((int)getpid(), generation);
}

void usdt_child_count_request(void)
{
	apr_atomic_inc32(&usdt_child_requests);
}
