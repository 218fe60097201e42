/*
 * template.h - fluentd's record placeholders without Ruby, shared by record_transformer,
 * record_modifier and record_reformer: "${tag}", "${tag_parts[N]}" (negative from the
 * end), "${tag_prefix[N]}", "${tag_suffix[N]}", "${hostname}", "${time}",
 * "${record["key"]}" (nested: ${record['a']['b']}) and, where the plugin allows it, the
 * v0.12 shortcut "${key}". With LS_TMPL_RUBY (enable_ruby), also the Ruby that real
 * files write: time, Time.now or a record field, then methods (strftime, to_i, iso8601,
 * strip...). A template is compiled once into literal and placeholder parts; anything else
 * inside ${...} would need Ruby and is a configuration error.
 */
#ifndef LS_TEMPLATE_H
#define LS_TEMPLATE_H

#include "plugin.h"

enum ls_tmpl_flags {
    LS_TMPL_KEY_SHORTCUT = 1 << 0,  /* ${key} is a record field (transformer v0.12, reformer) */
    LS_TMPL_TIME_EPOCH   = 1 << 1,  /* ${time} is integer seconds (record_modifier's EventTime) */
    LS_TMPL_NO_HOSTNAME  = 1 << 2,  /* record_modifier has no hostname variable */
    LS_TMPL_NO_TAG_FIXES = 1 << 3,  /* no tag_prefix/tag_suffix (record_modifier) */
    LS_TMPL_RUBY         = 1 << 4,  /* enable_ruby: ${time.strftime('%F')} and the like */
    /* fluentd v1's record_transformer without Ruby: any other ${...} (the v0.12 shortcut
     * ${key} among them) is an unknown placeholder, nil; compile returns LS_OK with a warning
     * in msg */
    LS_TMPL_UNKNOWN_NIL  = 1 << 5,
};

struct ls_tmpl_part;

struct ls_tmpl {
    struct ls_tmpl_part *parts;
    size_t n;
    bool has_placeholder;
};

/* LS_OK, or LS_ERROR with the reason in msg (the caller adds file:line). */
int ls_tmpl_compile(struct ls_tmpl *t, const char *text, unsigned flags, char *msg,
                    size_t msglen);
void ls_tmpl_release(struct ls_tmpl *t);
/* Append the expansion against rec (tag, time, fields) to b. */
void ls_tmpl_expand(const struct ls_tmpl *t, const struct ls_record *rec, struct ls_buf *b);
/* The expansion as a string value in rec's arena. */
struct ls_value ls_tmpl_expand_value(const struct ls_tmpl *t, const struct ls_record *rec);
/*
 * A template that is exactly one field placeholder (${record["k"]}, ${k}), one Ruby
 * expression (${time.to_i}) or one unknown placeholder: true, with the value as Ruby has it
 * (typed; null when the field is missing or the placeholder unknown) in *out. False for
 * anything else.
 */
bool ls_tmpl_field_value(const struct ls_tmpl *t, const struct ls_record *rec,
                         struct ls_value *out);
/*
 * A template that is exactly one placeholder, evaluated as Ruby would return it (for
 * record_modifier's "${expr}" values): a field keeps its type (null when missing),
 * ${time} with LS_TMPL_TIME_EPOCH is an integer, ${tag_parts[N]} past the end is null,
 * the rest are strings. False when the template is not a single placeholder.
 */
bool ls_tmpl_single_value(const struct ls_tmpl *t, const struct ls_record *rec,
                          struct ls_value *out);

/*
 * True once if an expansion since the last call met what Ruby raises on (a method of nil:
 * ${record["missing"].strip}); fluentd then sends the event to the error stream. The
 * expansions run on the loop thread only.
 */
bool ls_tmpl_take_error(void);

/* Ruby's Time#strftime of (sec, nsec) in UTC or local time (%L, %N, %3N, %:z, %s as Ruby). */
void ls_tmpl_strftime(struct ls_buf *b, const char *fmt, int64_t sec, int32_t nsec, bool utc);

#endif
