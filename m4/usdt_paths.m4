dnl usdt_paths.m4: where make install puts things.
dnl
dnl USDT_CHECK_PATHS
dnl   Needs USDT_CHECK_APXS and USDT_CHECK_DTRACE.  --with-apache-moduledir
dnl   (default: apxs's LIBEXECDIR) and --with-dtrace-libdir (default: where
dnl   the DTrace found loads D libraries from: /usr/lib/dtrace, dtrace-utils'
dnl   PREFIX/lib64/dtrace; none on macOS, where the library is then not
dnl   installed).  Substitutes APACHE_MODULEDIR and DTRACE_LIBDIR, and defines
dnl   the conditional DTRACE_DLIB_INSTALL.
AC_DEFUN([USDT_CHECK_PATHS], [
AC_REQUIRE([USDT_CHECK_APXS])
AC_REQUIRE([USDT_CHECK_DTRACE])
AC_ARG_WITH([apache-moduledir],
  [AS_HELP_STRING([--with-apache-moduledir=DIR],
    [where to install mod_usdt.so @<:@default: apxs -q LIBEXECDIR@:>@])],
  [APACHE_MODULEDIR=$withval], [APACHE_MODULEDIR=$APACHE_LIBEXECDIR])
AC_ARG_WITH([dtrace-libdir],
  [AS_HELP_STRING([--with-dtrace-libdir=DIR],
    [where to install the D library httpd.d @<:@default: where the dtrace
     found reads libraries: /usr/lib/dtrace, dtrace-utils' /usr/lib64/dtrace;
     none on macOS@:>@])],
  [DTRACE_LIBDIR=$withval; test "$with_dtrace_dlib" = no || DTRACE_DLIB_INSTALL=yes],
  [DTRACE_LIBDIR=$usdt_dtrace_libdir])
AS_IF([test -z "$DTRACE_LIBDIR"], [DTRACE_DLIB_INSTALL=no])
AS_CASE([$APACHE_MODULEDIR], [yes|no|""],
  [AC_MSG_ERROR([--with-apache-moduledir needs a directory])])
AS_CASE([$DTRACE_LIBDIR], [yes|no],
  [AC_MSG_ERROR([--with-dtrace-libdir needs a directory])])
AS_IF([test "$DTRACE_DLIB_INSTALL" = yes],
  [DTRACE_DLIB_WHERE="$DTRACE_LIBDIR/httpd.d ($DTRACE_DLIB variant)"],
  [test "$DTRACE_FLAVOUR" = apple],
  [DTRACE_DLIB_WHERE="not installed (macOS: /usr/lib/dtrace is read-only and ld64 keeps native arguments only; copy dtrace/httpd.d alone into a DIR for dtrace -L DIR)"],
  [DTRACE_DLIB_WHERE="not installed (--with-dtrace-dlib=no; built as dtrace/httpd.d, $DTRACE_DLIB variant)"])
AC_SUBST([DTRACE_DLIB_WHERE])
AM_CONDITIONAL([DTRACE_DLIB_INSTALL], [test "$DTRACE_DLIB_INSTALL" = yes])
AC_SUBST([APACHE_MODULEDIR])
AC_SUBST([DTRACE_LIBDIR])
])
