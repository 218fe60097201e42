/*
 * dynlib.h - load a shared library by its SONAME when a plugin first needs it.
 *
 * Linking libmariadb and libmicrohttpd made every logship process map them
 * and what they pull in, although most configurations use neither. A plugin
 * that needs such a library describes it here: the SONAME, the Debian package
 * that ships it (named in the error, since the package's Depends cannot come
 * from the link any more), and where each symbol's address goes in a table
 * of function pointers. ls_dynlib_load() in the plugin's init fills the table
 * before any call goes through it.
 */
#ifndef LS_DYNLIB_H
#define LS_DYNLIB_H

#include "common.h"

struct ls_dynsym {
    const char *name;
    size_t offset;              /* of its function pointer in the table */
};

struct ls_dynlib {
    const char *soname;         /* "libmariadb.so.3": the ABI the headers were built for */
    const char *package;        /* "libmariadb3" */
    const struct ls_dynsym *syms;
    size_t nsyms;
    void *table;
    void *handle;               /* private: set once everything resolved */
};

/*
 * Load lib and fill its table unless that already succeeded; safe from any
 * thread. A failure is not remembered, so a reload retries after the package
 * is installed. LS_OK, or LS_ERROR with the reason in err.
 */
int ls_dynlib_load(struct ls_dynlib *lib, char *err, size_t errlen);

#endif
