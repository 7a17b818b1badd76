/*
 * usdt_id.c: the shared request-id counter (see usdt_id.h).
 *
 * Licensed under the Apache License, Version 2.0.
 */
#include "usdt_id.h"

#include <apr_atomic.h>
#include <apr_shm.h>
#include <apr_version.h>

#define USDT_ID_USERDATA_KEY "usdt_module:id_source"

struct usdt_id_source {
	apr_shm_t *shm;
	volatile apr_uint64_t *counter; /* in the shared segment */
};

apr_status_t usdt_id_source_get(usdt_id_source **source, apr_pool_t *pool)
{
	usdt_id_source *s = NULL;
	apr_status_t rv;

	/* Reuse the segment of an earlier configuration cycle: restarting must
	 * not start the ids over. */
	apr_pool_userdata_get((void **)&s, USDT_ID_USERDATA_KEY, pool);
	if (s != NULL) {
		*source = s;
		return APR_SUCCESS;
	}

	s = apr_pcalloc(pool, sizeof(*s));
	/* A NULL name asks for anonymous shared memory, inherited by fork. */
	rv = apr_shm_create(&s->shm, sizeof(apr_uint64_t), NULL, pool);
	if (rv != APR_SUCCESS)
		return rv;
	s->counter = apr_shm_baseaddr_get(s->shm);
	*s->counter = 0;

	rv = apr_pool_userdata_set(s, USDT_ID_USERDATA_KEY,
	                           apr_pool_cleanup_null, pool);
	if (rv != APR_SUCCESS)
		return rv;
	*source = s;
	return APR_SUCCESS;
}

uint64_t usdt_id_next(usdt_id_source *source)
{
#if APR_VERSION_AT_LEAST(1, 7, 0)
	return (uint64_t)apr_atomic_add64(source->counter, 1) + 1;
#else
	return (uint64_t)__sync_add_and_fetch(source->counter, 1);
#endif
}
