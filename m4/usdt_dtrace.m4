dnl usdt_dtrace.m4: choose and test the dtrace that builds the probes.
dnl
dnl USDT_CHECK_DTRACE
dnl   Needs USDT_CHECK_DATA_MODEL.  The route, in order of preference:
dnl     --with-dtrace=PATH  whatever it is, tested like the others;
dnl     real DTrace         "dtrace -V" says "Sun D" (illumos, FreeBSD, macOS)
dnl                         or "Oracle D" (Oracle Linux, dtrace-utils 2.x);
dnl                         builds from the provider with one native argument
dnl                         (dtrace/gen-provider), gets -xnolibs and -32/-64,
dnl                         and its -G rewrites the module's objects;
dnl     SystemTap's dtrace  (Linux, systemtap-sdt-dev): over <sys/sdt.h>;
dnl     dtrace/dtrace-shim  (in tree): over <sys/sdt.h>, needs only that header.
dnl   Each is tested as the module uses it: a header generated from a small
dnl   provider, a PIC object with Apache's flags that fires its probe, the -G
dnl   object where the route has one, and a shared object linked from them.
dnl   Substitutes DTRACE, DTRACE_ROUTE, DTRACE_FLAVOUR (what kind of real
dnl   DTrace: illumos, freebsd, apple, oracle, or sun for another Sun D;
dnl   empty off that route), DTRACE_VERSION_TEXT, DTRACEFLAGS, DTRACE_ARGS
dnl   (all, or record: the record alone), DTRACE_DLIB (the D library's
dnl   variant: net, depending on net.d for conninfo_t; nodep, using the one
dnl   of a net.d loaded before it; own, defining it)
dnl   and usdt_dtrace_libdir (where that DTrace reads libraries; empty where
dnl   the library is not installed by default); defines the conditionals
dnl   DTRACE_REAL, DTRACE_REWRITES_OBJECTS (real DTrace with -G) and
dnl   DTRACE_HAS_G (a -G object must be linked at all).
AC_DEFUN([USDT_CHECK_DTRACE], [
AC_REQUIRE([USDT_CHECK_DATA_MODEL])
AC_REQUIRE([AC_CANONICAL_HOST])
AC_ARG_WITH([dtrace],
  [AS_HELP_STRING([--with-dtrace=PATH],
    [the dtrace that builds the probes: a real DTrace, SystemTap's dtrace or
     dtrace/dtrace-shim @<:@default: dtrace on PATH, else the in-tree shim@:>@])],
  [], [with_dtrace=check])
AC_ARG_WITH([dtrace-dlib],
  [AS_HELP_STRING([--with-dtrace-dlib=net|nodep|own|no],
    [the D library httpd.d: net (depends on net.d for conninfo_t: illumos),
     nodep (conninfo_t from a net.d loaded before it, no dependency: Oracle
     Linux), own (defines conninfo_t: FreeBSD), no (not installed: macOS)
     @<:@default: what the DTrace found needs@:>@])],
  [], [with_dtrace_dlib=auto])

usdt_shim=`cd "$srcdir" && pwd`/dtrace/dtrace-shim
AS_CASE([$with_dtrace],
  [no], [AC_MSG_ERROR([mod_usdt exists to fire probes and cannot be built without a dtrace; drop --without-dtrace (the in-tree dtrace/dtrace-shim needs only <sys/sdt.h>)])],
  [yes|check], [AC_PATH_PROG([DTRACE], [dtrace], [],
                 [$PATH$PATH_SEPARATOR/usr/sbin$PATH_SEPARATOR/usr/bin])],
  [AS_IF([test -f "$with_dtrace" && test -x "$with_dtrace"], [DTRACE=$with_dtrace],
     [AC_MSG_ERROR([--with-dtrace=$with_dtrace: no such executable file; give the path of a dtrace (a real DTrace, SystemTap's dtrace from systemtap-sdt-dev, or $usdt_shim)])])])

AC_MSG_CHECKING([which kind of dtrace $DTRACE is])
DTRACE_FLAVOUR=
DTRACE_VERSION_TEXT=
AS_IF([test -z "$DTRACE"], [
    DTRACE=$usdt_shim
    DTRACE_ROUTE=shim
  ], [test "$DTRACE" = "$usdt_shim"], [
    DTRACE_ROUTE=shim
  ], [
    dnl illumos, FreeBSD and macOS print "dtrace: Sun D 1.x", dtrace-utils
    dnl "dtrace: Oracle D 2.0"; SystemTap's dtrace and the shim have no -V.
    DTRACE_VERSION_TEXT=`"$DTRACE" -V 2>&1 | grep -E 'Sun D|Oracle D' | sed -n '1s/^dtrace: *//p'`
    AS_CASE([$DTRACE_VERSION_TEXT],
      ["Oracle D"*], [DTRACE_ROUTE=dtrace; DTRACE_FLAVOUR=oracle],
      ["Sun D"*], [DTRACE_ROUTE=dtrace
        AS_CASE([$host_os],
          [darwin*], [DTRACE_FLAVOUR=apple],
          [freebsd*], [DTRACE_FLAVOUR=freebsd],
          [solaris*], [DTRACE_FLAVOUR=illumos],
          [DTRACE_FLAVOUR=sun])],
      [AS_IF([grep 'dtrace-shim' "$DTRACE" >/dev/null 2>&1], [DTRACE_ROUTE=shim],
         [grep -i 'systemtap' "$DTRACE" >/dev/null 2>&1], [DTRACE_ROUTE=systemtap],
        [AC_MSG_RESULT([unknown])
         AC_MSG_ERROR([$DTRACE is neither a real DTrace ("dtrace -V" says neither "Sun D" nor "Oracle D") nor SystemTap's dtrace; give one with --with-dtrace=PATH, or --with-dtrace=$usdt_shim])])])])
AS_IF([test "$DTRACE_ROUTE" = dtrace],
  [AC_MSG_RESULT([a real DTrace: $DTRACE_VERSION_TEXT ($DTRACE_FLAVOUR)])],
  [AC_MSG_RESULT([$DTRACE_ROUTE])])

AS_IF([test "$DTRACE_ROUTE" != dtrace], [
  usdt_save_CPPFLAGS=$CPPFLAGS
  CPPFLAGS="$CPPFLAGS $APXS_CPPFLAGS"
  AC_CHECK_HEADER([sys/sdt.h], [],
    [AC_MSG_ERROR([<sys/sdt.h> not found: the $DTRACE_ROUTE route fires probes through it.
Install it (Debian: apt-get install systemtap-sdt-dev), or give a real DTrace with --with-dtrace=PATH])])
  CPPFLAGS=$usdt_save_CPPFLAGS
  DTRACEFLAGS=
  DTRACE_ARGS=all
], [
  dnl -xnolibs: illumos, FreeBSD and Oracle Linux load every library of
  dnl their library directory for -h and -G too (only Apple sets nolibs,
  dnl for -h), so net.d's conninfo_t, and an installed httpd.d, would clash
  dnl with the provider file's dummy types.  SystemTap's dtrace rejects -x,
  dnl so this is for this route only.
  DTRACEFLAGS="-xnolibs $DTRACE_MODEL_FLAG"
  DTRACE_ARGS=record
])

AC_CACHE_CHECK([whether $DTRACE builds working probes into a shared object], [usdt_cv_dtrace_works], [
  usdt_cv_dtrace_works=no
  usdt_cv_dtrace_has_g=no
  rm -rf conftest.dir && mkdir conftest.dir
  cat > conftest.dir/prov.d <<'USDT_EOF'
typedef struct conftest_rec { int dummy; } conftest_rec_t;
provider conftest {
	probe fire(conftest_rec_t *r);
};
USDT_EOF
  dnl As src/usdt_probes.h: _DTRACE_VERSION set, the header included as is.
  cat > conftest.dir/main.c <<'USDT_EOF'
#ifndef _DTRACE_VERSION
#define _DTRACE_VERSION 1
#endif
typedef struct conftest_rec { int dummy; } conftest_rec_t;
#include "prov.h"
int conftest_hook(conftest_rec_t *r);
int conftest_hook(conftest_rec_t *r)
{
	if (CONFTEST_FIRE_ENABLED())
		CONFTEST_FIRE(r);
	return r->dummy;
}
USDT_EOF
  usdt_run() { echo "$[]as_me:$LINENO: $[]*" >&AS_MESSAGE_LOG_FD; "$[]@" >&AS_MESSAGE_LOG_FD 2>&1; }
  dnl With Apache's flags (a -m32/-m64 there decides the ELF class the -G
  dnl object must match), as PIC, linked as a shared object like the module:
  dnl a real DTrace's -G object does not link into a PIE executable
  dnl (R_X86_64_NONE against its absolute is-enabled symbols).
  usdt_cflags="$APXS_CFLAGS $CFLAGS -fPIC"
  AS_IF([(cd conftest.dir &&
          usdt_run env CC="$CC" CFLAGS="$usdt_cflags" "$DTRACE" $DTRACEFLAGS -h -s prov.d -o prov.h &&
          usdt_run $CC $CPPFLAGS $usdt_cflags -c main.c -o main.o)], [
    dnl macOS's DTrace needs no -G object (ld64 builds the probes); the others do.
    AS_IF([(cd conftest.dir &&
            usdt_run env CC="$CC" CFLAGS="$usdt_cflags" "$DTRACE" $DTRACEFLAGS -G -s prov.d -o prov.o main.o &&
            usdt_run $CC $usdt_cflags $LDFLAGS -shared -o conftest.so main.o prov.o)],
      [usdt_cv_dtrace_works=yes; usdt_cv_dtrace_has_g=yes],
      [AS_IF([(cd conftest.dir && usdt_run $CC $usdt_cflags $LDFLAGS -shared -o conftest.so main.o)],
        [usdt_cv_dtrace_works=yes])])])
  rm -rf conftest.dir])
AS_IF([test "$usdt_cv_dtrace_works" != yes],
  [AC_MSG_ERROR([$DTRACE ($DTRACE_ROUTE) could not generate a probe header and a shared object that fires its probe with Apache's flags ($APXS_CFLAGS) (see config.log for the commands and their output).
Fix that dtrace, or choose another with --with-dtrace=PATH (the in-tree $usdt_shim needs only <sys/sdt.h>)])])
AC_CACHE_CHECK([whether the probes need a dtrace -G object], [usdt_cv_dtrace_has_g],
  [usdt_cv_dtrace_has_g=no])

dnl The D library: which variant, and where this DTrace reads libraries.
dnl illumos ships net.d in /usr/lib/dtrace (conninfo_t, shared by its
dnl protocol providers).  FreeBSD ships no net.d (cddl/lib/libdtrace/Makefile).
dnl dtrace-utils reads PREFIX/lib64/dtrace, and its net.d lives in a
dnl kernel-version directory below it, which it loads first (dt_load_libs in
dnl libdtrace/dt_dlibs.c): conninfo_t is there already, a second definition
dnl is "type redeclared", and a depends_on, resolved in the library's own
dnl directory, fails.
dnl macOS ships no net.d, and System Integrity Protection makes
dnl /usr/lib/dtrace read-only; ld64 keeps only native argument types there,
dnl so the library is not installed (it is still built: dtrace -L).
usdt_dtrace_libdir=/usr/lib/dtrace
AS_CASE([$DTRACE_FLAVOUR],
  [illumos], [usdt_dlib=net],
  [freebsd], [usdt_dlib=own],
  [oracle], [usdt_dlib=nodep
    usdt_dtrace_prefix=`AS_DIRNAME(["$DTRACE"])`
    usdt_dtrace_prefix=`AS_DIRNAME(["$usdt_dtrace_prefix"])`
    AS_IF([test -d "$usdt_dtrace_prefix/lib64/dtrace"],
      [usdt_dtrace_libdir=$usdt_dtrace_prefix/lib64/dtrace],
      [usdt_dtrace_libdir=/usr/lib64/dtrace])],
  [apple], [usdt_dlib=no; usdt_dtrace_libdir=],
  [sun], [AS_IF([test -f /usr/lib/dtrace/net.d], [usdt_dlib=net], [usdt_dlib=own])],
  [usdt_dlib=net])
AS_CASE([$with_dtrace_dlib],
  [auto], [],
  [net|nodep|own], [usdt_dlib=$with_dtrace_dlib
    AS_IF([test -z "$usdt_dtrace_libdir"], [usdt_dtrace_libdir=/usr/lib/dtrace])],
  [no], [usdt_dlib=no],
  [AC_MSG_ERROR([--with-dtrace-dlib=$with_dtrace_dlib: expected net (the library depends on net.d), nodep (it uses the conninfo_t of a net.d loaded before it), own (it defines conninfo_t) or no (not installed)])])
AC_MSG_CHECKING([which D library variant to build])
AS_CASE([$usdt_dlib],
  [net], [AC_MSG_RESULT([net: conninfo_t from net.d])],
  [nodep], [AC_MSG_RESULT([nodep: conninfo_t from the net.d this DTrace loads first])],
  [own], [AC_MSG_RESULT([own: conninfo_t defined in httpd.d])],
  [AC_MSG_RESULT([own, not installed by default])])
DTRACE_DLIB_INSTALL=yes
AS_IF([test "$usdt_dlib" = no], [DTRACE_DLIB=own; DTRACE_DLIB_INSTALL=no], [DTRACE_DLIB=$usdt_dlib])

AC_SUBST([DTRACE])
AC_SUBST([DTRACE_ROUTE])
AC_SUBST([DTRACE_FLAVOUR])
AC_SUBST([DTRACE_VERSION_TEXT])
AC_SUBST([DTRACEFLAGS])
AC_SUBST([DTRACE_ARGS])
AC_SUBST([DTRACE_DLIB])
AM_CONDITIONAL([DTRACE_REAL], [test "$DTRACE_ROUTE" = dtrace])
AM_CONDITIONAL([DTRACE_HAS_G], [test "$usdt_cv_dtrace_has_g" = yes])
AM_CONDITIONAL([DTRACE_REWRITES_OBJECTS],
  [test "$usdt_cv_dtrace_has_g" = yes && test "$DTRACE_ROUTE" = dtrace])
])
