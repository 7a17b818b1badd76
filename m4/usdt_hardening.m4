dnl usdt_hardening.m4: the hardening flags the module is built with.
dnl
dnl USDT_CHECK_HARDENING
dnl   A module runs inside the web server, so it is built with the flags
dnl   Debian hardens its packages with, whatever apxs says: stack protector,
dnl   stack clash protection, _FORTIFY_SOURCE=2 (unless CPPFLAGS or CFLAGS
dnl   set it already, or there is no optimization), and full RELRO (-z relro
dnl   -z now).  Not -fcf-protection: Apache is not built with it, so it would
dnl   protect nothing and add an endbr64 to each hook.  Each flag is kept
dnl   only where the compiler and the linker take it; --disable-hardening
dnl   drops them all.  Substitutes HARDEN_CFLAGS, HARDEN_CPPFLAGS and
dnl   HARDEN_LDFLAGS.
AC_DEFUN([USDT_CHECK_HARDENING], [
AC_REQUIRE([USDT_CHECK_APXS])
AC_ARG_ENABLE([hardening],
  [AS_HELP_STRING([--disable-hardening],
    [build without the stack protector, FORTIFY_SOURCE and RELRO/BIND_NOW flags])],
  [], [enable_hardening=yes])
HARDEN_CFLAGS=
HARDEN_CPPFLAGS=
HARDEN_LDFLAGS=
AS_IF([test "$enable_hardening" != no], [
  usdt_save_CFLAGS=$CFLAGS
  usdt_save_LDFLAGS=$LDFLAGS
  for usdt_flag in -fstack-protector-strong -fstack-clash-protection; do
    AS_CASE([" $APXS_CFLAGS $CFLAGS "], [*" $usdt_flag "*], [continue])
    AC_MSG_CHECKING([whether $CC accepts $usdt_flag])
    CFLAGS="$usdt_save_CFLAGS $usdt_flag -Werror"
    AC_COMPILE_IFELSE([AC_LANG_PROGRAM([], [[char b[8]; b[0] = 0; return b[0];]])],
      [HARDEN_CFLAGS="$HARDEN_CFLAGS $usdt_flag"; AC_MSG_RESULT([yes])],
      [AC_MSG_RESULT([no])])
  done
  CFLAGS=$usdt_save_CFLAGS
  dnl glibc warns about _FORTIFY_SOURCE without optimization (-O0): then
  dnl leave it out rather than break --enable-werror.
  AS_CASE([" $APXS_CPPFLAGS $APXS_CFLAGS $CPPFLAGS $CFLAGS "],
    [*_FORTIFY_SOURCE*], [],
    [AC_MSG_CHECKING([whether $CC takes -D_FORTIFY_SOURCE=2 with these CFLAGS])
     CFLAGS="$APXS_CFLAGS $usdt_save_CFLAGS -D_FORTIFY_SOURCE=2 -Werror"
     AC_COMPILE_IFELSE([AC_LANG_PROGRAM([[#include <string.h>]], [[return (int)strlen("");]])],
       [HARDEN_CPPFLAGS=-D_FORTIFY_SOURCE=2; AC_MSG_RESULT([yes])],
       [AC_MSG_RESULT([no])])
     CFLAGS=$usdt_save_CFLAGS])
  AC_MSG_CHECKING([whether the linker takes -z relro -z now])
  LDFLAGS="$usdt_save_LDFLAGS -Wl,-z,relro -Wl,-z,now"
  AC_LINK_IFELSE([AC_LANG_PROGRAM([], [])],
    [HARDEN_LDFLAGS="-Wl,-z,relro -Wl,-z,now"; AC_MSG_RESULT([yes])],
    [AC_MSG_RESULT([no])])
  LDFLAGS=$usdt_save_LDFLAGS
  HARDEN_CFLAGS=`echo $HARDEN_CFLAGS`
])
AC_SUBST([HARDEN_CFLAGS])
AC_SUBST([HARDEN_CPPFLAGS])
AC_SUBST([HARDEN_LDFLAGS])
])
