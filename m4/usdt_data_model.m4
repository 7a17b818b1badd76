dnl usdt_data_model.m4: 32-bit or 64-bit, for the compiler and for Apache.
dnl
dnl USDT_CHECK_DATA_MODEL
dnl   Needs USDT_CHECK_APXS.  Finds the data model the compiler produces with
dnl   Apache's flags (a compile test of sizeof(void *)) and the one of the
dnl   Apache binary (its ELF class, else -m32/-m64 in apxs's CFLAGS), and stops
dnl   when they differ: a module of the wrong width does not load.
dnl   Substitutes DATA_MODEL (ILP32 or LP64) and DTRACE_MODEL_FLAG (-32/-64).
AC_DEFUN([USDT_CHECK_DATA_MODEL], [
AC_REQUIRE([USDT_CHECK_APXS])
AC_CACHE_CHECK([the data model $CC builds with Apache's flags], [usdt_cv_cc_data_model], [
  usdt_save_CFLAGS=$CFLAGS
  CFLAGS="$APXS_CFLAGS $CFLAGS"
  AC_COMPUTE_INT([usdt_ptr_bits], [sizeof(void *) * 8], [], [usdt_ptr_bits=unknown])
  CFLAGS=$usdt_save_CFLAGS
  AS_CASE([$usdt_ptr_bits],
    [32], [usdt_cv_cc_data_model=ILP32],
    [64], [usdt_cv_cc_data_model=LP64],
    [usdt_cv_cc_data_model=unknown])])
AS_IF([test "$usdt_cv_cc_data_model" = unknown],
  [AC_MSG_ERROR([could not compile a test of sizeof(void *) with $CC $APXS_CFLAGS $CFLAGS (see config.log); is a C compiler installed?])])

AC_CACHE_CHECK([the data model of Apache], [usdt_cv_apache_data_model], [
  usdt_cv_apache_data_model=unknown
  dnl Byte 5 of an ELF file (EI_CLASS) is 1 for 32-bit, 2 for 64-bit.
  AS_IF([test -n "$APACHE_BINARY" && test -r "$APACHE_BINARY"], [
    usdt_elf=`od -A n -t x1 -N 5 "$APACHE_BINARY" 2>/dev/null | tr -d ' \n'`
    AS_CASE([$usdt_elf],
      [7f454c4601], [usdt_cv_apache_data_model="ILP32 (ELF class of $APACHE_BINARY)"],
      [7f454c4602], [usdt_cv_apache_data_model="LP64 (ELF class of $APACHE_BINARY)"])])
  AS_IF([test "$usdt_cv_apache_data_model" = unknown], [
    AS_CASE([" $APXS_CFLAGS "],
      [*" -m64 "*], [usdt_cv_apache_data_model="LP64 (-m64 in apxs CFLAGS)"],
      [*" -m32 "*], [usdt_cv_apache_data_model="ILP32 (-m32 in apxs CFLAGS)"],
      [usdt_cv_apache_data_model="$usdt_cv_cc_data_model (assumed: no ELF binary, no -m32/-m64 in apxs CFLAGS)"])])])

DATA_MODEL=$usdt_cv_cc_data_model
AS_CASE([$usdt_cv_apache_data_model],
  ["$DATA_MODEL "*], [],
  [AC_MSG_ERROR([data model mismatch: Apache is $usdt_cv_apache_data_model, but $CC with Apache's flags builds $DATA_MODEL code, which Apache cannot load.
Build with a compiler for Apache's model (for example CC="gcc -m32" for a 32-bit Apache, with a 32-bit libc: gcc-multilib), or point --with-apxs at the apxs of an Apache of the compiler's model])])
AS_CASE([$DATA_MODEL], [ILP32], [DTRACE_MODEL_FLAG=-32], [DTRACE_MODEL_FLAG=-64])
AC_SUBST([DATA_MODEL])
AC_SUBST([DTRACE_MODEL_FLAG])
])
