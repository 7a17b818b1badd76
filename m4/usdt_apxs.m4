dnl usdt_apxs.m4: find apxs and ask it, once, about the Apache we build for.
dnl
dnl USDT_CHECK_APXS
dnl   --with-apxs=PATH, else apxs2 or apxs on PATH (and in /usr/bin,
dnl   /usr/sbin, /usr/local/apache2/bin).  Substitutes APXS, APXS_CPPFLAGS,
dnl   APXS_CFLAGS, APACHE_LIBEXECDIR, APACHE_VERSION, APACHE_BINARY, APR_LIBS.
AC_DEFUN([USDT_CHECK_APXS], [
AC_ARG_WITH([apxs],
  [AS_HELP_STRING([--with-apxs=PATH],
    [the apxs (APache eXtenSion tool) of the Apache to build for
     @<:@default: apxs2 or apxs on PATH@:>@])],
  [], [with_apxs=check])

AS_CASE([$with_apxs],
  [no], [AC_MSG_ERROR([mod_usdt is an Apache module and cannot be built without apxs; drop --without-apxs])],
  [yes|check], [
    AC_PATH_PROGS([APXS], [apxs2 apxs], [],
                  [$PATH$PATH_SEPARATOR/usr/bin$PATH_SEPARATOR/usr/sbin$PATH_SEPARATOR/usr/local/apache2/bin])
    AS_IF([test -z "$APXS"],
      [AC_MSG_ERROR([apxs not found: looked for apxs2 and apxs on PATH, /usr/bin, /usr/sbin and /usr/local/apache2/bin.
Install Apache's development files (Debian: apt-get install apache2-dev) or give --with-apxs=PATH])])],
  [
    AC_MSG_CHECKING([for apxs])
    APXS=$with_apxs
    AS_IF([test -f "$APXS" && test -x "$APXS"], [AC_MSG_RESULT([$APXS])],
      [AC_MSG_RESULT([no])
       AC_MSG_ERROR([--with-apxs=$with_apxs: no such executable file; give the path of apxs (Debian: /usr/bin/apxs2 from apache2-dev)])])
  ])

AC_CACHE_CHECK([whether $APXS answers queries], [usdt_cv_apxs_works], [
  AS_IF([usdt_apxs_out=`"$APXS" -q LIBEXECDIR 2>&AS_MESSAGE_LOG_FD` && test -n "$usdt_apxs_out"],
    [usdt_cv_apxs_works=yes], [usdt_cv_apxs_works=no])])
AS_IF([test "$usdt_cv_apxs_works" != yes],
  [AC_MSG_ERROR([$APXS -q LIBEXECDIR failed or printed nothing: $APXS is not a working apxs (see config.log); give another with --with-apxs=PATH])])

AC_MSG_CHECKING([what apxs says about Apache])
usdt_q() { "$APXS" -q "$[1]" 2>/dev/null || true; }
APACHE_LIBEXECDIR=`usdt_q LIBEXECDIR`
usdt_includedir=`usdt_q INCLUDEDIR`
usdt_apr_includedir=`usdt_q APR_INCLUDEDIR`
usdt_apu_includedir=`usdt_q APU_INCLUDEDIR`
APXS_CFLAGS="`usdt_q CFLAGS` `usdt_q EXTRA_CFLAGS` `usdt_q NOTEST_CFLAGS`"
APXS_CPPFLAGS="`usdt_q EXTRA_CPPFLAGS` -I$usdt_includedir"
AS_IF([test -n "$usdt_apr_includedir"], [APXS_CPPFLAGS="$APXS_CPPFLAGS -I$usdt_apr_includedir"])
AS_IF([test -n "$usdt_apu_includedir" && test "$usdt_apu_includedir" != "$usdt_apr_includedir"],
      [APXS_CPPFLAGS="$APXS_CPPFLAGS -I$usdt_apu_includedir"])
dnl Only the unit tests link APR themselves; the module gets it from httpd.
usdt_apr_config=`usdt_q APR_CONFIG`
APR_LIBS=
AS_IF([test -n "$usdt_apr_config" && test -x "$usdt_apr_config"],
  [APR_LIBS=`"$usdt_apr_config" --link-ld --libs 2>/dev/null || true`])
APACHE_VERSION=`usdt_q HTTPD_VERSION`
AS_IF([test -z "$APACHE_VERSION" && test -f "$usdt_includedir/ap_release.h"],
  [APACHE_VERSION=`awk '/^#define AP_SERVER_(MAJOR|MINOR|PATCH)_NUMBER/ { printf "%s%s", sep, $[3]; sep = "." }' "$usdt_includedir/ap_release.h"`])
usdt_sbindir=`usdt_q SBINDIR`
usdt_target=`usdt_q TARGET`
APACHE_BINARY=
for usdt_bin in "$usdt_sbindir/$usdt_target" "$usdt_sbindir/httpd" "$usdt_sbindir/apache2"; do
  AS_IF([test -f "$usdt_bin"], [APACHE_BINARY=$usdt_bin; break])
done
AC_MSG_RESULT([Apache $APACHE_VERSION, modules in $APACHE_LIBEXECDIR])

AS_IF([test ! -f "$usdt_includedir/httpd.h"],
  [AC_MSG_ERROR([$APXS says Apache's headers are in $usdt_includedir, but httpd.h is not there; install Apache's development files (Debian: apache2-dev)])])
AS_CASE([$APACHE_VERSION],
  [2.4.*|2.5.*|2.6.*|""], [],
  [AC_MSG_ERROR([mod_usdt needs Apache httpd 2.4 or later; $APXS is for Apache $APACHE_VERSION])])

AC_SUBST([APXS])
AC_SUBST([APXS_CFLAGS])
AC_SUBST([APXS_CPPFLAGS])
AC_SUBST([APACHE_LIBEXECDIR])
AC_SUBST([APACHE_VERSION])
AC_SUBST([APACHE_BINARY])
AC_SUBST([APR_LIBS])
])
