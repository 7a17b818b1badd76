/*
 * usdt_id.h: request ids that are unique across all child processes for
 * the life of the server.
 *
 * The counter lives in anonymous shared memory that the parent maps once, in
 * the process pool, before any child is forked: every child of every
 * generation (graceful restarts included) increments the same word.  Ids are
 * handed out only while a probe is enabled, so untraced servers never touch
 * the shared cache line.
 */
#ifndef USDT_ID_H
#define USDT_ID_H

#include <apr_pools.h>
#include <apr_errno.h>
#include <stdint.h>

typedef struct usdt_id_source usdt_id_source;

/*
 * Return the id source kept in the userdata of pool (normally the process
 * pool, which outlives every configuration cycle), creating it on first use.
 */
apr_status_t usdt_id_source_get(usdt_id_source **source, apr_pool_t *pool);

/* The next id: never 0, never repeated for the life of the source. */
uint64_t usdt_id_next(usdt_id_source *source);

#endif /* USDT_ID_H */
