/*
 * tail.h - private header of the tail input (fluentd's in_tail).
 *
 * tail_pos.c: the pos_file, byte-compatible with fluentd/td-agent.
 * tail.c: parameters, path expansion, watchers, rotation, the read loop.
 */
#ifndef LS_IN_TAIL_H
#define LS_IN_TAIL_H

#include "plugin.h"
#include "enc.h"

/* fluentd's UNWATCHED_POSITION: an entry whose file is no longer followed */
#define TAIL_POS_UNWATCHED UINT64_MAX

struct tail_pos_entry {
    char *path;
    uint64_t pos;
    uint64_t ino;
    int64_t field;      /* file offset of the 16-digit pos field; -1: memory only */
    bool live;          /* claimed by a watcher: kept by compaction */
    bool rotated;       /* its file was rotated away while we watched: pos and ino are stale */
};

struct tail_pos {
    char *path;
    int fd;                     /* -1 after a failed reopen: entries stay in memory */
    uint64_t size;              /* where the next entry is appended */
    bool follow_inodes;         /* entries keyed by inode instead of path */
    struct tail_pos_entry **v;
    size_t n, cap;
    size_t unparsable;          /* lines dropped at load */
    size_t duplicates;          /* keys seen twice at load (the last one wins) */
};

/*
 * Parse pos_file text the way fluentd does (/^([^\t]+)\t([0-9a-fA-F]+)\t([0-9a-fA-F]+)/
 * per line). cb is called for every matching line, in order. Returns the
 * number of lines that do not match (empty lines are not counted).
 */
typedef void (*tail_pos_line_cb)(void *arg, const char *path, size_t plen, uint64_t pos,
                                 uint64_t ino);
size_t tail_pos_parse(const char *buf, size_t len, tail_pos_line_cb cb, void *arg);

/*
 * Open (create) path and load its entries: unwatched entries are dropped,
 * for a key seen twice the last line wins. The file is rewritten in compact
 * form at once (tmp + rename). NULL on error with a message in err.
 */
struct tail_pos *tail_pos_open(const char *path, bool follow_inodes, char *err, size_t errlen);
void tail_pos_close(struct tail_pos *pf);
/* The entry for a file (by path, or by inode with follow_inodes), or NULL. */
struct tail_pos_entry *tail_pos_find(struct tail_pos *pf, const char *path, uint64_t ino);
/* Append an entry (one write of the whole line). Paths with TAB/LF stay memory-only. */
struct tail_pos_entry *tail_pos_add(struct tail_pos *pf, const char *path, uint64_t pos,
                                    uint64_t ino);
/* Overwrite the fixed-width fields in place (one pwrite). LS_OK / LS_ERROR. */
int tail_pos_update(struct tail_pos *pf, struct tail_pos_entry *e, uint64_t pos);
int tail_pos_update2(struct tail_pos *pf, struct tail_pos_entry *e, uint64_t pos, uint64_t ino);
/* Change the path an entry is written under (rewrites the file). */
int tail_pos_rename(struct tail_pos *pf, struct tail_pos_entry *e, const char *path);
/* Rewrite the file atomically with the live entries only (drops the others). */
int tail_pos_compact(struct tail_pos *pf);

#endif
