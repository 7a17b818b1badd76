dnl usdt_paths.m4: where make install puts things.
dnl
dnl USDT_CHECK_PATHS
dnl   Needs USDT_CHECK_APXS.  --with-apache-moduledir (default: apxs's
dnl   LIBEXECDIR) and --with-dtrace-libdir (default: /usr/lib/dtrace, where
dnl   dtrace(1) loads D libraries from).  Substitutes APACHE_MODULEDIR and
dnl   DTRACE_LIBDIR.
AC_DEFUN([USDT_CHECK_PATHS], [
AC_REQUIRE([USDT_CHECK_APXS])
AC_ARG_WITH([apache-moduledir],
  [AS_HELP_STRING([--with-apache-moduledir=DIR],
    [where to install mod_usdt.so @<:@default: apxs -q LIBEXECDIR@:>@])],
  [APACHE_MODULEDIR=$withval], [APACHE_MODULEDIR=$APACHE_LIBEXECDIR])
AC_ARG_WITH([dtrace-libdir],
  [AS_HELP_STRING([--with-dtrace-libdir=DIR],
    [where to install the D library httpd.d @<:@default: /usr/lib/dtrace@:>@])],
  [DTRACE_LIBDIR=$withval], [DTRACE_LIBDIR=/usr/lib/dtrace])
AS_CASE([$APACHE_MODULEDIR], [yes|no|""],
  [AC_MSG_ERROR([--with-apache-moduledir needs a directory])])
AS_CASE([$DTRACE_LIBDIR], [yes|no|""],
  [AC_MSG_ERROR([--with-dtrace-libdir needs a directory])])
AC_SUBST([APACHE_MODULEDIR])
AC_SUBST([DTRACE_LIBDIR])
])
