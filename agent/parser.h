/*
 * parser.h - the common layer every parser instance gets (core-internal).
 *
 * fluentd's parser base class owns time_key/time_format/types/... for every
 * parser type; here too: ls_instance_create() calls ls_parser_setup() for
 * parser instances, which binds the common parameters from the same section
 * and keeps them in ins->core. ls_parser_parse() (plugin.h) runs the
 * plugin's .parse and then this layer.
 */
#ifndef LS_PARSER_H
#define LS_PARSER_H

#include "plugin.h"

/*
 * v0.12 flat form (`format apache2`, `time_format ...` on the plugin itself): build the
 * <parse> section fluentd's compat layer makes from them (a `/re/` format becomes
 * @type regexp + expression), marking them used. sec must have a `format`.
 */
struct ls_conf_section *ls_parser_flat_section(struct ls_conf_section *sec);
int ls_parser_setup(struct ls_instance *ins, struct ls_conf_section *sec, char *err, size_t errlen);
void ls_parser_teardown(struct ls_instance *ins);
/* Common parameter table (for --describe and docs). */
extern const struct ls_param ls_parser_common_params[];

/*
 * For parser plugins' init: fluentd's per-parser defaults (config_set_default).
 * Each is applied only when the user did not set that parameter.
 * time_key: NULL = keep, "" = no time key (csv, tsv, none). time_format: NULL
 * = keep. time_type: -1 = keep, else an LS_PARSER_TT_* value. LS_OK or
 * LS_ERROR (bad format, message in err).
 */
#define LS_PARSER_TT_STRING   0
#define LS_PARSER_TT_UNIXTIME 1
#define LS_PARSER_TT_FLOAT    2
#define LS_PARSER_TT_MIXED    3
int ls_parser_set_defaults(struct ls_instance *ins, const char *time_key, const char *time_format,
                           int time_type, char *err, size_t errlen);
/* Read no time field, whatever time_key says (fluent-plugin-parser's `time_parse false`). */
void ls_parser_no_time_key(struct ls_instance *ins);
/* An input's own default for estimate_current_event (in_exec: false), unless the user set it. */
void ls_parser_set_estimate_default(struct ls_instance *ins, bool estimate);
/*
 * Read v as an event time the way a parser reads its time_key: time_type LS_PARSER_TT_STRING
 * (tf: the compiled time_format), _UNIXTIME or _FLOAT (numbers; a string that is not one is
 * tried with tf if given). For fluentd's <extract> section (in_exec). False: not a time.
 */
struct ls_timefmt;
bool ls_parser_value_time(const struct ls_value *v, int time_type, struct ls_timefmt *tf,
                          struct ls_time *out);
/* Effective time_format (NULL = none) and the configured zone (NULL = local). */
const char *ls_parser_time_format(const struct ls_instance *ins);
const char *ls_parser_zone(const struct ls_instance *ins);
/*
 * A plugin that reads the event time itself (syslog rfc5424, mysql_slow)
 * hands it over here; the common layer then leaves time_key alone (the
 * plugin removes the field itself unless ls_parser_keep_time_key()).
 */
void ls_parser_set_time(struct ls_instance *ins, const struct ls_time *t);
bool ls_parser_keep_time_key(const struct ls_instance *ins);
/* A plugin's .parse may name why it declined (static string); default "pattern not matched". */
void ls_parser_set_error(struct ls_instance *ins, const char *why);
/*
 * After LS_DECLINED from ls_parser_parse/flush: the reason, and for
 * multiline parsers the joined text that failed (NULL: the line itself).
 */
const char *ls_parser_error(const struct ls_instance *parser);
const char *ls_parser_declined_text(const struct ls_instance *parser, size_t *len);
/* For multiline parsers: remember the joined text a DECLINED refers to. */
void ls_parser_set_declined_text(struct ls_instance *ins, const char *p, size_t len);

/*
 * Regular expressions with fluentd's (Ruby) syntax on PCRE2 + JIT, shared by
 * the regexp-based parsers. src is "/body/flags" (i, m = dot matches
 * newline, x) or a bare body; ^ and $ are line anchors as in Ruby.
 */
struct ls_regex;
/* false when LOGSHIP_PCRE2_JIT=0 (the tests' valgrind runs): compile no pattern with the JIT */
bool ls_pcre2_jit_wanted(void);
struct ls_regex *ls_regex_compile(const char *src, bool dotall, char *err, size_t errlen);
void ls_regex_free(struct ls_regex *re);
/* Number of named groups. */
size_t ls_regex_names(const struct ls_regex *re);
/*
 * Search s; on a match add each named group that participated as a string
 * field (a slice of s; keys owned by re). LS_OK, LS_DECLINED (no match), or
 * LS_ERROR (match limit hit: pathological input).
 */
int ls_regex_match_record(struct ls_regex *re, const char *s, size_t len, struct ls_record *rec);
/* Search s from offset; 1 with the match span in mstart..mend, 0 none, -1 error. */
int ls_regex_find(struct ls_regex *re, const char *s, size_t len, size_t offset, size_t *mstart,
                  size_t *mend);
/* Search only. 1 match, 0 no match, -1 error. */
int ls_regex_search(struct ls_regex *re, const char *s, size_t len);
/* After a match: group n's span (1-based; 0 the whole match). False when the group did not
 * take part in the match or does not exist. Valid until the next search with re. */
bool ls_regex_group(const struct ls_regex *re, unsigned n, size_t *start, size_t *end);
/* The same for a named group (?<name>...). */
bool ls_regex_named_group(const struct ls_regex *re, const char *name, size_t *start,
                          size_t *end);

#endif
