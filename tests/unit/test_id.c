/*
 * test_id.c: request ids are never 0, never repeat, and are shared by every
 * process forked after the source was made, across configuration cycles.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_atomic.h>

#include "usdt_id.h"

static apr_pool_t *pool;

static int setup(void **state)
{
	(void)state;
	apr_initialize();
	apr_atomic_init(NULL);
	return apr_pool_create(&pool, NULL) == APR_SUCCESS ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	apr_pool_destroy(pool);
	apr_terminate();
	return 0;
}

static void test_ids_start_at_one_and_increase(void **state)
{
	usdt_id_source *ids;
	apr_pool_t *p;
	(void)state;

	assert_int_equal(apr_pool_create(&p, pool), APR_SUCCESS);
	assert_int_equal(usdt_id_source_get(&ids, p), APR_SUCCESS);
	assert_int_equal(usdt_id_next(ids), 1);
	assert_int_equal(usdt_id_next(ids), 2);
	assert_int_equal(usdt_id_next(ids), 3);
	apr_pool_destroy(p);
}

static void test_source_survives_a_config_cycle(void **state)
{
	usdt_id_source *first, *again;
	uint64_t before;
	(void)state;

	/* post_config runs once per configuration cycle with the same process
	 * pool: the second call must find the first source, not restart. */
	assert_int_equal(usdt_id_source_get(&first, pool), APR_SUCCESS);
	before = usdt_id_next(first);
	assert_int_equal(usdt_id_source_get(&again, pool), APR_SUCCESS);
	assert_ptr_equal(first, again);
	assert_int_equal(usdt_id_next(again), before + 1);
}

#define CHILDREN 4
#define PER_CHILD 20000

static void test_children_share_the_counter(void **state)
{
	usdt_id_source *ids;
	apr_pool_t *p;
	uint64_t before, after;
	int i, status;
	pid_t pids[CHILDREN];
	(void)state;

	assert_int_equal(apr_pool_create(&p, pool), APR_SUCCESS);
	assert_int_equal(usdt_id_source_get(&ids, p), APR_SUCCESS);
	before = usdt_id_next(ids);
	for (i = 0; i < CHILDREN; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			int n;
			for (n = 0; n < PER_CHILD; n++)
				(void)usdt_id_next(ids);
			_exit(0);
		}
	}
	for (i = 0; i < CHILDREN; i++) {
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	/* Every increment of every child landed in the one shared word: none
	 * was lost to a race, none stayed in a private copy. */
	after = usdt_id_next(ids);
	assert_int_equal(after, before + (uint64_t)CHILDREN * PER_CHILD + 1);
	apr_pool_destroy(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ids_start_at_one_and_increase),
		cmocka_unit_test(test_source_survives_a_config_cycle),
		cmocka_unit_test(test_children_share_the_counter),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
