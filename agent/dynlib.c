/*
 * dynlib.c - see dynlib.h.
 */
#include "dynlib.h"

#include <dlfcn.h>
#include <pthread.h>

/* the table is filled by copying dlsym's object pointer into function pointers (POSIX) */
_Static_assert(sizeof(void *) == sizeof(void (*)(void)), "function pointers must fit void *");

/* one lock for every library: loads are rare (plugin init) and must not race on a table */
static pthread_mutex_t dynlib_lock = PTHREAD_MUTEX_INITIALIZER;

int ls_dynlib_load(struct ls_dynlib *lib, char *err, size_t errlen)
{
    void *h, *p;
    size_t i;
    int rc = LS_OK;

    pthread_mutex_lock(&dynlib_lock);
    if (lib->handle) {
        goto out;
    }
    /* RTLD_NOW: an unresolvable dependency fails here, in init, and not at the first call
     * in the middle of a harvest; RTLD_LOCAL: libraries loaded later never bind to it */
    h = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        snprintf(err, errlen, "cannot load %s (install the Debian package %s): %s", lib->soname,
                 lib->package, dlerror());
        rc = LS_ERROR;
        goto out;
    }
    for (i = 0; i < lib->nsyms; i++) {
        (void)dlerror();
        p = dlsym(h, lib->syms[i].name);
        if (p == NULL) {
            const char *e = dlerror();
            snprintf(err, errlen, "cannot load %s (install a current version of the Debian "
                     "package %s): %s", lib->soname, lib->package, e ? e : lib->syms[i].name);
            dlclose(h);
            rc = LS_ERROR;
            goto out;
        }
        memcpy((char *)lib->table + lib->syms[i].offset, &p, sizeof(p));
    }
    /* never closed: a reload would only load it again, and the library may have
     * started threads or registered handlers that must not outlive its code */
    lib->handle = h;
out:
    pthread_mutex_unlock(&dynlib_lock);
    return rc;
}
