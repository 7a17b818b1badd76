/*
 * test_layout.c: the records' layout as the D library sees it, checked
 * against the compiler's, for each of the three records (dthttpd_t,
 * dthttpd_conn_t, dthttpd_proxy_t; below "the record" is any of them).
 *
 * dthttpd_layout_d.h is "dtrace/gen-layout d src/dthttpd.h": the D
 * declarations dthttpd32_t and dthttpd64_t, which are also valid C.  (and the
 * same for dthttpd_conn_t and dthttpd_proxy_t).  The D compiler lays them out like the C compiler of a 64-bit kernel, so compiled
 * here they show what DTrace will read, and they must match the record that
 * mod_usdt fills: dthttpd64_t in a 64-bit process, dthttpd32_t in a 32-bit
 * one (build this test with -m32 to check that one).
 *
 * dthttpd_members.h is "dtrace/gen-layout members src/dthttpd.h", one
 * MEMBER(name) line per member (MEMBER_CONN, MEMBER_PROXY for the others).  Walking that list, each member must start
 * where the previous one ended and the last one must end at sizeof: so a
 * member that the list (or the D views, which come from the same parser)
 * missed, or padding the compiler inserted, fails the walk.  The header has
 * no implicit padding on purpose: reserve is written out.
 *
 * Built with -m32, the views get i386's alignment (4 for uint64_t), not the
 * D compiler's, so that build alone cannot see a uint64_t that D would pad.
 * The 64-bit build can: there every member must be naturally aligned for
 * the walk to find no gap, pointers can only sit in the pointer area, and a
 * layout without gaps is the same under both rules.  The -m32 build then
 * shows that a 32-bit Apache fills the record the way dthttpd32_t reads it.
 *
 * Licensed under the Apache License, Version 2.0.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "dthttpd.h"
#include "dthttpd_layout_d.h"

#define MSIZE(type, m) sizeof(((type *)0)->m)

/* One member as the record, its 32-bit and its 64-bit view lay it out. */
typedef struct {
	const char *name;
	size_t off, size;       /* in the record, as this compiler builds it */
	size_t off32, size32;   /* in the ILP32 view */
	size_t off64, size64;   /* in the LP64 view */
} member_t;

#define ROW(rec, v32, v64, m)                                                  \
	{ #m, offsetof(rec, m), MSIZE(rec, m), offsetof(v32, m), MSIZE(v32, m), \
	  offsetof(v64, m), MSIZE(v64, m) },

#define MEMBER(m) ROW(dthttpd_t, dthttpd32_t, dthttpd64_t, m)
#define MEMBER_CONN(m)
#define MEMBER_PROXY(m)
static const member_t request_members[] = {
#include "dthttpd_members.h"
};
#undef MEMBER
#undef MEMBER_CONN
#define MEMBER(m)
#define MEMBER_CONN(m) ROW(dthttpd_conn_t, dthttpd_conn32_t, dthttpd_conn64_t, m)
static const member_t conn_members[] = {
#include "dthttpd_members.h"
};
#undef MEMBER_CONN
#undef MEMBER_PROXY
#define MEMBER_CONN(m)
#define MEMBER_PROXY(m) ROW(dthttpd_proxy_t, dthttpd_proxy32_t, dthttpd_proxy64_t, m)
static const member_t proxy_members[] = {
#include "dthttpd_members.h"
};
#undef MEMBER
#undef MEMBER_CONN
#undef MEMBER_PROXY

/* A record: its members, sizes, fixed area and first pointer member. */
typedef struct {
	const char *name;
	const member_t *members;
	size_t count;
	size_t size, size32, size64;    /* sizeof record, 32-bit, 64-bit view */
	size_t fixed;                   /* the promised fixed-area size */
	const char *first_ptr;          /* the member that starts the pointer area */
} record_t;

#define RECORD(rec, v32, v64, table, fixed, first)                             \
	{ #rec, table, sizeof(table) / sizeof(table[0]), sizeof(rec),          \
	  sizeof(v32), sizeof(v64), fixed, #first }

static const record_t records[] = {
	RECORD(dthttpd_t, dthttpd32_t, dthttpd64_t, request_members,
	       DTHTTPD_FIXED_SIZE, laddr),
	RECORD(dthttpd_conn_t, dthttpd_conn32_t, dthttpd_conn64_t, conn_members,
	       DTHTTPD_CONN_FIXED_SIZE, laddr),
	RECORD(dthttpd_proxy_t, dthttpd_proxy32_t, dthttpd_proxy64_t,
	       proxy_members, DTHTTPD_PROXY_FIXED_SIZE, backend),
};
#define NRECORDS (sizeof(records) / sizeof(records[0]))

/* The view that matches this build's data model. */
#if UINTPTR_MAX == UINT64_MAX
#define NATIVE_OFF(m) ((m)->off64)
#define NATIVE_SIZE(m) ((m)->size64)
#define NATIVE_RECSIZE(r) ((r)->size64)
#define NATIVE_VIEW "64"
#else
#define NATIVE_OFF(m) ((m)->off32)
#define NATIVE_SIZE(m) ((m)->size32)
#define NATIVE_RECSIZE(r) ((r)->size32)
#define NATIVE_VIEW "32"
#endif

/* Each member starts where the previous one ended, in the record and in
 * the native D view, and has the same offset and size in both. */
static void test_members_match_native_view(void **state)
{
	size_t r, i;

	(void)state;
	for (r = 0; r < NRECORDS; r++) {
		const record_t *rec = &records[r];
		size_t next = 0;

		assert_true(rec->count > 0);
		for (i = 0; i < rec->count; i++) {
			const member_t *m = &rec->members[i];

			if (m->off != next)
				fail_msg("%s.%s at %zu, expected %zu: padding or a "
				         "member missing from the list",
				         rec->name, m->name, m->off, next);
			if (NATIVE_OFF(m) != m->off)
				fail_msg("%s view %s.%s at %zu, the record's at %zu",
				         NATIVE_VIEW, rec->name, m->name,
				         NATIVE_OFF(m), m->off);
			if (NATIVE_SIZE(m) != m->size)
				fail_msg("%s view %s.%s is %zu bytes, the record's %zu",
				         NATIVE_VIEW, rec->name, m->name,
				         NATIVE_SIZE(m), m->size);
			next = m->off + m->size;
		}
		if (next != rec->size)
			fail_msg("%s: members end at %zu, sizeof is %zu",
			         rec->name, next, rec->size);
	}
}

static void test_sizes_match(void **state)
{
	size_t r;

	(void)state;
	for (r = 0; r < NRECORDS; r++) {
		const record_t *rec = &records[r];

		assert_int_equal(NATIVE_RECSIZE(rec), rec->size);
		/* Both views are whole in either model: the fixed area, then
		 * one word of 4 or 8 bytes per pointer. */
		assert_int_equal(rec->size64 - rec->fixed,
		                 2 * (rec->size32 - rec->fixed));
	}
}

/* The fixed area ends where the first pointer begins: at the promised size
 * in the record and in both views. */
static void test_fixed_area_size(void **state)
{
	size_t r, i;

	(void)state;
	assert_int_equal(DTHTTPD_FIXED_SIZE, 128);
	assert_int_equal(DTHTTPD_CONN_FIXED_SIZE, 64);
	assert_int_equal(DTHTTPD_PROXY_FIXED_SIZE, 64);
	for (r = 0; r < NRECORDS; r++) {
		const record_t *rec = &records[r];
		int found = 0;

		for (i = 0; i < rec->count; i++) {
			const member_t *m = &rec->members[i];

			if (strcmp(m->name, rec->first_ptr) != 0)
				continue;
			found = 1;
			if (m->off != rec->fixed || m->off32 != rec->fixed ||
			    m->off64 != rec->fixed)
				fail_msg("%s.%s at %zu (32-bit view %zu, 64-bit "
				         "%zu), the fixed area is %zu bytes",
				         rec->name, m->name, m->off, m->off32,
				         m->off64, rec->fixed);
		}
		if (!found)
			fail_msg("%s has no member %s", rec->name, rec->first_ptr);
	}
}

/* The translators read fixed fields through either view, so every member
 * of the fixed area must be at the same place, with the same size, in both
 * (this is what a pointer or a misaligned uint64_t there would break). */
static void test_fixed_area_same_in_both_models(void **state)
{
	size_t r, i;

	(void)state;
	for (r = 0; r < NRECORDS; r++) {
		const record_t *rec = &records[r];
		unsigned fixed = 0;

		for (i = 0; i < rec->count; i++) {
			const member_t *m = &rec->members[i];

			if (m->off >= rec->fixed)
				continue;
			fixed++;
			if (m->off32 != m->off64 || m->size32 != m->size64)
				fail_msg("fixed member %s.%s: at %zu (%zu bytes) in "
				         "the 32-bit view, %zu (%zu) in the 64-bit",
				         rec->name, m->name, m->off32, m->size32,
				         m->off64, m->size64);
			if (m->off64 + m->size64 > rec->fixed)
				fail_msg("fixed member %s.%s crosses into the "
				         "pointer area", rec->name, m->name);
		}
		assert_true(fixed > 0);
	}
}

/* Pointer-area members are words of the process: 4 bytes each in the
 * 32-bit view and 8 in the 64-bit one, at offsets that scale the same way. */
static void test_pointer_area_scales(void **state)
{
	size_t r, i;

	(void)state;
	for (r = 0; r < NRECORDS; r++) {
		const record_t *rec = &records[r];

		for (i = 0; i < rec->count; i++) {
			const member_t *m = &rec->members[i];

			if (m->off64 < rec->fixed)
				continue;
			if (m->size64 != 2 * m->size32)
				fail_msg("pointer member %s.%s: %zu bytes in the "
				         "64-bit view, %zu in the 32-bit",
				         rec->name, m->name, m->size64, m->size32);
			if (m->off64 - rec->fixed != 2 * (m->off32 - rec->fixed))
				fail_msg("pointer member %s.%s: at %zu in the 64-bit "
				         "view, %zu in the 32-bit", rec->name,
				         m->name, m->off64, m->off32);
		}
	}
}

/* The old fields of dthttpd_t never move: the offsets of the first
 * release, which tools compiled against it read. */
static void test_request_record_old_offsets(void **state)
{
	(void)state;
	assert_int_equal(offsetof(dthttpd_t, id), 0);
	assert_int_equal(offsetof(dthttpd_t, elapsed_us), 8);
	assert_int_equal(offsetof(dthttpd_t, bytes_received), 16);
	assert_int_equal(offsetof(dthttpd_t, bytes_sent), 24);
	assert_int_equal(offsetof(dthttpd_t, status), 32);
	assert_int_equal(offsetof(dthttpd_t, lport), 36);
	assert_int_equal(offsetof(dthttpd_t, rport), 38);
	assert_int_equal(offsetof(dthttpd_t, ipversion), 40);
	assert_int_equal(offsetof(dthttpd_t, ptr_size), 44);
	assert_int_equal(offsetof(dthttpd_t, laddr), 128);
	assert_int_equal(offsetof(dthttpd_t, raddr), 128 + 1 * sizeof(void *));
	assert_int_equal(offsetof(dthttpd_t, method), 128 + 2 * sizeof(void *));
	assert_int_equal(offsetof(dthttpd_t, uri), 128 + 3 * sizeof(void *));
	assert_int_equal(offsetof(dthttpd_t, agent), 128 + 4 * sizeof(void *));
	assert_int_equal(offsetof(dthttpd_t, protocol), 128 + 5 * sizeof(void *));
	assert_int_equal(offsetof(dthttpd_t, host), 128 + 6 * sizeof(void *));
	assert_int_equal(offsetof(dthttpd_t, vhost), 128 + 7 * sizeof(void *));
	/* and the record keeps its size: new fields came from reserve */
	assert_int_equal(sizeof(dthttpd_t), 128 + 16 * sizeof(void *));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_members_match_native_view),
		cmocka_unit_test(test_sizes_match),
		cmocka_unit_test(test_fixed_area_size),
		cmocka_unit_test(test_fixed_area_same_in_both_models),
		cmocka_unit_test(test_pointer_area_scales),
		cmocka_unit_test(test_request_record_old_offsets),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
