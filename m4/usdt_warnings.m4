dnl usdt_warnings.m4: compiler warnings, and --enable-werror for CI.
dnl
dnl USDT_CHECK_WARNINGS
dnl   Substitutes WARN_CFLAGS: -Wall -Wextra where the compiler takes them,
dnl   plus -Werror with --enable-werror.
AC_DEFUN([USDT_CHECK_WARNINGS], [
AC_ARG_ENABLE([werror],
  [AS_HELP_STRING([--enable-werror], [treat compiler warnings as errors])],
  [], [enable_werror=no])
AC_CACHE_CHECK([whether $CC accepts -Wall -Wextra], [usdt_cv_cc_wextra], [
  usdt_save_CFLAGS=$CFLAGS
  CFLAGS="$CFLAGS -Wall -Wextra -Werror"
  AC_COMPILE_IFELSE([AC_LANG_PROGRAM([], [])],
    [usdt_cv_cc_wextra=yes], [usdt_cv_cc_wextra=no])
  CFLAGS=$usdt_save_CFLAGS])
WARN_CFLAGS=
AS_IF([test "$usdt_cv_cc_wextra" = yes], [WARN_CFLAGS="-Wall -Wextra"])
AS_IF([test "$enable_werror" = yes], [WARN_CFLAGS="$WARN_CFLAGS -Werror"])
AC_SUBST([WARN_CFLAGS])
])
