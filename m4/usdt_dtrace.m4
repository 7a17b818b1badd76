dnl usdt_dtrace.m4: choose and test the dtrace that builds the probes.
dnl
dnl USDT_CHECK_DTRACE
dnl   Needs USDT_CHECK_DATA_MODEL.  The route, in order of preference:
dnl     --with-dtrace=PATH  whatever it is, tested like the others;
dnl     real DTrace         (illumos, FreeBSD, macOS, Oracle Linux): "dtrace -V"
dnl                         says "Sun D"; gets -32/-64; -G rewrites objects;
dnl     SystemTap's dtrace  (Linux, systemtap-sdt-dev): over <sys/sdt.h>;
dnl     dtrace/dtrace-shim  (in tree): over <sys/sdt.h>, needs only that header.
dnl   Each is tested by generating a header from a small provider, compiling
dnl   a program that fires its probe and, where the route has one, linking the
dnl   -G object.  Substitutes DTRACE, DTRACE_ROUTE, DTRACEFLAGS; defines the
dnl   conditionals DTRACE_REWRITES_OBJECTS (real DTrace with -G) and
dnl   DTRACE_HAS_G (a -G object must be linked at all).
AC_DEFUN([USDT_CHECK_DTRACE], [
AC_REQUIRE([USDT_CHECK_DATA_MODEL])
AC_ARG_WITH([dtrace],
  [AS_HELP_STRING([--with-dtrace=PATH],
    [the dtrace that builds the probes: a real DTrace, SystemTap's dtrace or
     dtrace/dtrace-shim @<:@default: dtrace on PATH, else the in-tree shim@:>@])],
  [], [with_dtrace=check])

usdt_shim=`cd "$srcdir" && pwd`/dtrace/dtrace-shim
AS_CASE([$with_dtrace],
  [no], [AC_MSG_ERROR([mod_usdt exists to fire probes and cannot be built without a dtrace; drop --without-dtrace (the in-tree dtrace/dtrace-shim needs only <sys/sdt.h>)])],
  [yes|check], [AC_PATH_PROG([DTRACE], [dtrace], [],
                 [$PATH$PATH_SEPARATOR/usr/sbin$PATH_SEPARATOR/usr/bin])],
  [AS_IF([test -f "$with_dtrace" && test -x "$with_dtrace"], [DTRACE=$with_dtrace],
     [AC_MSG_ERROR([--with-dtrace=$with_dtrace: no such executable file; give the path of a dtrace (a real DTrace, SystemTap's dtrace from systemtap-sdt-dev, or $usdt_shim)])])])

AC_MSG_CHECKING([which kind of dtrace $DTRACE is])
AS_IF([test -z "$DTRACE"], [
    DTRACE=$usdt_shim
    DTRACE_ROUTE=shim
  ], [AS_IF([test "$DTRACE" = "$usdt_shim" || grep 'dtrace-shim' "$DTRACE" >/dev/null 2>&1],
    [DTRACE_ROUTE=shim],
  [("$DTRACE" -V 2>&1 | grep 'Sun D') >/dev/null 2>&1],
    [DTRACE_ROUTE=dtrace],
  [grep -i 'systemtap' "$DTRACE" >/dev/null 2>&1],
    [DTRACE_ROUTE=systemtap],
    [AC_MSG_RESULT([unknown])
     AC_MSG_ERROR([$DTRACE is neither a real DTrace ("dtrace -V" does not say "Sun D") nor SystemTap's dtrace; give one with --with-dtrace=PATH, or --with-dtrace=$usdt_shim])])])
AC_MSG_RESULT([$DTRACE_ROUTE])

AS_IF([test "$DTRACE_ROUTE" != dtrace], [
  usdt_save_CPPFLAGS=$CPPFLAGS
  CPPFLAGS="$CPPFLAGS $APXS_CPPFLAGS"
  AC_CHECK_HEADER([sys/sdt.h], [],
    [AC_MSG_ERROR([<sys/sdt.h> not found: the $DTRACE_ROUTE route fires probes through it.
Install it (Debian: apt-get install systemtap-sdt-dev), or give a real DTrace with --with-dtrace=PATH])])
  CPPFLAGS=$usdt_save_CPPFLAGS
  DTRACEFLAGS=
], [
  DTRACEFLAGS=$DTRACE_MODEL_FLAG
])

AC_CACHE_CHECK([whether $DTRACE builds working probes], [usdt_cv_dtrace_works], [
  usdt_cv_dtrace_works=no
  usdt_cv_dtrace_has_g=no
  rm -rf conftest.dir && mkdir conftest.dir
  cat > conftest.dir/prov.d <<'USDT_EOF'
provider conftest {
	probe fire(int n, char *s);
};
USDT_EOF
  cat > conftest.dir/main.c <<'USDT_EOF'
#include "prov.h"
int main(void)
{
	if (CONFTEST_FIRE_ENABLED())
		CONFTEST_FIRE(1, (char *)"x");
	return 0;
}
USDT_EOF
  usdt_run() { echo "$[]as_me:$LINENO: $[]*" >&AS_MESSAGE_LOG_FD; "$[]@" >&AS_MESSAGE_LOG_FD 2>&1; }
  AS_IF([(cd conftest.dir &&
          usdt_run env CC="$CC" CFLAGS="$CFLAGS" "$DTRACE" $DTRACEFLAGS -h -s prov.d -o prov.h &&
          usdt_run $CC $CPPFLAGS $CFLAGS -c main.c -o main.o)], [
    dnl macOS's DTrace needs no -G object; the others do.
    AS_IF([(cd conftest.dir &&
            usdt_run env CC="$CC" CFLAGS="$CFLAGS" "$DTRACE" $DTRACEFLAGS -G -s prov.d -o prov.o main.o &&
            usdt_run $CC $CFLAGS $LDFLAGS -o conftest main.o prov.o)],
      [usdt_cv_dtrace_works=yes; usdt_cv_dtrace_has_g=yes],
      [AS_IF([(cd conftest.dir && usdt_run $CC $CFLAGS $LDFLAGS -o conftest main.o)],
        [usdt_cv_dtrace_works=yes])])])
  rm -rf conftest.dir])
AS_IF([test "$usdt_cv_dtrace_works" != yes],
  [AC_MSG_ERROR([$DTRACE ($DTRACE_ROUTE) could not generate a probe header and a program that fires its probe (see config.log for the commands and their output).
Fix that dtrace, or choose another with --with-dtrace=PATH (the in-tree $usdt_shim needs only <sys/sdt.h>)])])
AC_CACHE_CHECK([whether the probes need a dtrace -G object], [usdt_cv_dtrace_has_g],
  [usdt_cv_dtrace_has_g=no])

AC_SUBST([DTRACE])
AC_SUBST([DTRACE_ROUTE])
AC_SUBST([DTRACEFLAGS])
AM_CONDITIONAL([DTRACE_HAS_G], [test "$usdt_cv_dtrace_has_g" = yes])
AM_CONDITIONAL([DTRACE_REWRITES_OBJECTS],
  [test "$usdt_cv_dtrace_has_g" = yes && test "$DTRACE_ROUTE" = dtrace])
])
