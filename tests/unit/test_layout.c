/*
 * test_layout.c: the record's layout as the D library sees it, checked
 * against the compiler's.
 *
 * dthttpd_layout_d.h is "dtrace/gen-layout d src/dthttpd.h": the D
 * declarations dthttpd32_t and dthttpd64_t, which are also valid C.  The D
 * compiler lays them out like the C compiler of a 64-bit kernel, so compiled
 * here they show what DTrace will read, and they must match the record that
 * mod_usdt fills: dthttpd64_t in a 64-bit process, dthttpd32_t in a 32-bit
 * one (build this test with -m32 to check that one).
 *
 * dthttpd_members.h is "dtrace/gen-layout members src/dthttpd.h", one
 * MEMBER(name) line per member.  Walking that list, each member must start
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
#include <cmocka.h>

#include "dthttpd.h"
#include "dthttpd_layout_d.h"

/* The view of the record that matches this build's data model. */
#if UINTPTR_MAX == UINT64_MAX
typedef dthttpd64_t dthttpd_native_t;
#define NATIVE_VIEW "dthttpd64_t"
#else
typedef dthttpd32_t dthttpd_native_t;
#define NATIVE_VIEW "dthttpd32_t"
#endif

#define MSIZE(type, m) sizeof(((type *)0)->m)

/* Each member starts where the previous one ended, in the record and in
 * the native D view, and has the same offset and size in both. */
static void test_members_match_native_view(void **state)
{
	size_t next = 0;

	(void)state;
#define MEMBER(m)                                                              \
	do {                                                                   \
		if (offsetof(dthttpd_t, m) != next)                            \
			fail_msg("dthttpd_t.%s at %zu, expected %zu: padding "  \
			         "or a member missing from the list",          \
			         #m, offsetof(dthttpd_t, m), next);            \
		if (offsetof(dthttpd_native_t, m) != offsetof(dthttpd_t, m))   \
			fail_msg("%s.%s at %zu, dthttpd_t.%s at %zu",          \
			         NATIVE_VIEW, #m,                              \
			         offsetof(dthttpd_native_t, m), #m,            \
			         offsetof(dthttpd_t, m));                      \
		if (MSIZE(dthttpd_native_t, m) != MSIZE(dthttpd_t, m))         \
			fail_msg("%s.%s is %zu bytes, dthttpd_t.%s %zu",       \
			         NATIVE_VIEW, #m, MSIZE(dthttpd_native_t, m),  \
			         #m, MSIZE(dthttpd_t, m));                     \
		next = offsetof(dthttpd_t, m) + MSIZE(dthttpd_t, m);           \
	} while (0);
#include "dthttpd_members.h"
#undef MEMBER
	assert_int_equal(next, sizeof(dthttpd_t));
}

static void test_sizes_match(void **state)
{
	(void)state;
	assert_int_equal(sizeof(dthttpd_native_t), sizeof(dthttpd_t));
	/* Both views are whole in either model: the fixed area, then one
	 * word of 4 or 8 bytes per pointer. */
	assert_int_equal(sizeof(dthttpd64_t) - DTHTTPD_FIXED_SIZE,
	                 2 * (sizeof(dthttpd32_t) - DTHTTPD_FIXED_SIZE));
}

/* The fixed area ends where the first pointer, laddr, begins: at 128 in
 * the record and in both views. */
static void test_fixed_area_is_128_bytes(void **state)
{
	(void)state;
	assert_int_equal(DTHTTPD_FIXED_SIZE, 128);
	assert_int_equal(offsetof(dthttpd_t, laddr), DTHTTPD_FIXED_SIZE);
	assert_int_equal(offsetof(dthttpd32_t, laddr), DTHTTPD_FIXED_SIZE);
	assert_int_equal(offsetof(dthttpd64_t, laddr), DTHTTPD_FIXED_SIZE);
}

/* The translators read fixed fields through either view, so every member
 * of the fixed area must be at the same place, with the same size, in both
 * (this is what a pointer or a misaligned uint64_t there would break). */
static void test_fixed_area_same_in_both_models(void **state)
{
	unsigned fixed = 0;

	(void)state;
#define MEMBER(m)                                                              \
	if (offsetof(dthttpd_t, m) < DTHTTPD_FIXED_SIZE) {                     \
		fixed++;                                                       \
		if (offsetof(dthttpd32_t, m) != offsetof(dthttpd64_t, m))      \
			fail_msg("fixed member %s: dthttpd32_t at %zu, "       \
			         "dthttpd64_t at %zu", #m,                     \
			         offsetof(dthttpd32_t, m),                     \
			         offsetof(dthttpd64_t, m));                    \
		if (MSIZE(dthttpd32_t, m) != MSIZE(dthttpd64_t, m))            \
			fail_msg("fixed member %s: %zu bytes in dthttpd32_t, " \
			         "%zu in dthttpd64_t", #m,                     \
			         MSIZE(dthttpd32_t, m), MSIZE(dthttpd64_t, m)); \
		if (offsetof(dthttpd64_t, m) + MSIZE(dthttpd64_t, m) >         \
		    DTHTTPD_FIXED_SIZE)                                        \
			fail_msg("fixed member %s crosses into the pointer "   \
			         "area", #m);                                  \
	}
#include "dthttpd_members.h"
#undef MEMBER
	assert_true(fixed > 0);
}

/* Pointer-area members are words of the process: 4 bytes each in the
 * 32-bit view and 8 in the 64-bit one, at offsets that scale the same way. */
static void test_pointer_area_scales(void **state)
{
	(void)state;
#define MEMBER(m)                                                              \
	if (offsetof(dthttpd64_t, m) >= DTHTTPD_FIXED_SIZE) {                  \
		if (MSIZE(dthttpd64_t, m) != 2 * MSIZE(dthttpd32_t, m))        \
			fail_msg("pointer member %s: %zu bytes in "            \
			         "dthttpd64_t, %zu in dthttpd32_t", #m,        \
			         MSIZE(dthttpd64_t, m), MSIZE(dthttpd32_t, m)); \
		if (offsetof(dthttpd64_t, m) - DTHTTPD_FIXED_SIZE !=           \
		    2 * (offsetof(dthttpd32_t, m) - DTHTTPD_FIXED_SIZE))       \
			fail_msg("pointer member %s: at %zu in dthttpd64_t, "  \
			         "%zu in dthttpd32_t", #m,                     \
			         offsetof(dthttpd64_t, m),                     \
			         offsetof(dthttpd32_t, m));                    \
	}
#include "dthttpd_members.h"
#undef MEMBER
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_members_match_native_view),
		cmocka_unit_test(test_sizes_match),
		cmocka_unit_test(test_fixed_area_is_128_bytes),
		cmocka_unit_test(test_fixed_area_same_in_both_models),
		cmocka_unit_test(test_pointer_area_scales),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
