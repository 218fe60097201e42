/*
 * rds.h - helpers shared by the rds_slowlog / rds_general_log input
 * (plugin-private; the unit test includes it by path). Pure functions:
 * the watermark state file, value conversions of log-table columns, and
 * the row fingerprint. No MySQL types here, so they test without a server.
 */
#ifndef LS_RDS_H
#define LS_RDS_H

#include "common.h"

/*
 * The watermark: which table generation we were reading (ident, the
 * fingerprint of its first row mixed with its row count for immutable
 * backup tables), how many of its rows are durably buffered (done, in the
 * table's natural scan order) and the fingerprint of row done-1 (last),
 * checked before resuming in the append-only live table.
 */
struct rds_state {
    char table[64];
    uint64_t ident;     /* 0: no generation yet */
    uint64_t done;
    uint64_t last;
};

/* Parse the state file text. LS_OK, or LS_ERROR for a malformed file. */
int rds_state_parse(const char *text, size_t len, struct rds_state *st);
/* Render the state file text into out (outlen bytes). Returns the length. */
size_t rds_state_format(const struct rds_state *st, char *out, size_t outlen);
/* Load path (a missing file is an empty state, LS_OK). */
int rds_state_load(const char *path, struct rds_state *st);
/* Write atomically (tmp + fsync + rename + fsync dir). */
int rds_state_save(const char *path, const struct rds_state *st);

/* 64-bit FNV-1a, incremental: start with RDS_FNV_INIT. */
#define RDS_FNV_INIT 1469598103934665603ULL
uint64_t rds_fnv(uint64_t h, const void *p, size_t len);
/* Fold one column value into a row fingerprint (length-prefixed, NULL distinct from ""). */
uint64_t rds_hash_value(uint64_t h, const char *p, size_t len, bool is_null);

/*
 * MySQL TIME text "[-]H..H:MM:SS[.ffffff]" (hours up to 838) to seconds.
 * LS_OK / LS_ERROR.
 */
int rds_parse_duration(const char *s, size_t len, double *out);
/* UNIX_TIMESTAMP() text "1700000000[.ffffff]" to sec/nsec. LS_OK / LS_ERROR. */
int rds_parse_epoch(const char *s, size_t len, int64_t *sec, int32_t *nsec);
/* Decimal integer text to int64 (unsigned values above INT64_MAX fail). */
int rds_parse_int(const char *s, size_t len, int64_t *out);

/*
 * Split user_host "priv_user[user] @ host [ip]" into user, host and ip
 * (slices of s; empty when absent). LS_OK, or LS_DECLINED when s does not
 * have that shape.
 */
struct rds_slice {
    const char *p;
    size_t len;
};
int rds_split_user_host(const char *s, size_t len, struct rds_slice *user,
                        struct rds_slice *host, struct rds_slice *ip);

#endif
