/*
 * banned.h - libc functions that are easy to misuse, turned into compile
 * errors (git's banned.h idea). Use snprintf, strtol/strtoull with checks,
 * gmtime_r/localtime_r instead.
 */
#ifndef LS_BANNED_H
#define LS_BANNED_H

#define LS_BANNED(func) sorry_##func##_is_a_banned_function

#undef strcpy
#define strcpy(x, y) LS_BANNED(strcpy)
#undef strcat
#define strcat(x, y) LS_BANNED(strcat)
#undef sprintf
#define sprintf(...) LS_BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) LS_BANNED(vsprintf)
#undef strtok
#define strtok(x, y) LS_BANNED(strtok)
#undef atoi
#define atoi(x) LS_BANNED(atoi)
#undef gmtime
#define gmtime(x) LS_BANNED(gmtime)
#undef localtime
#define localtime(x) LS_BANNED(localtime)

#endif
