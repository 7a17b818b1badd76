dnl usdt_test_tools.m4: what "make check" uses.
dnl
dnl USDT_CHECK_TEST_TOOLS
dnl   cmocka (for the unit tests; without it they are reported as skipped),
dnl   python3, readelf and bpftrace.  Substitutes CMOCKA_CFLAGS, CMOCKA_LIBS,
dnl   PYTHON3, READELF, BPFTRACE; conditional HAVE_CMOCKA.
AC_DEFUN([USDT_CHECK_TEST_TOOLS], [
PKG_CHECK_MODULES([CMOCKA], [cmocka >= 1.1],
  [usdt_have_cmocka=yes],
  [usdt_have_cmocka="no (apt-get install libcmocka-dev): unit tests will fail"])
AM_CONDITIONAL([HAVE_CMOCKA], [test "$usdt_have_cmocka" = yes])
AC_PATH_PROG([PYTHON3], [python3], [python3], [/usr/bin$PATH_SEPARATOR$PATH])
AC_PATH_PROG([READELF], [readelf], [readelf])
AC_PATH_PROG([BPFTRACE], [bpftrace], [],
             [$PATH$PATH_SEPARATOR/usr/sbin$PATH_SEPARATOR/usr/bin])
])
