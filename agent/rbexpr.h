/*
 * rbexpr.h - the Ruby expressions enable_ruby placeholders hold, beyond the receiver and
 * method chains template.c compiles itself: literals, local variables and `;`, the
 * operators (arithmetic, comparison, =~, !, &&, ||, the ternary), ranges in [], string
 * interpolation, regular expressions, and the String, Integer, Float, Array, Hash and Time
 * methods real td-agent files call (split, join, gsub, sub, include?, start_with?, map(&:m),
 * reject(&:empty?), first, last, dig, fetch, strftime...). What it does not know is a
 * configuration error naming the construct, never a guess.
 */
#ifndef LS_RBEXPR_H
#define LS_RBEXPR_H

#include "record.h"

struct rbx;

/* NULL with the reason in msg when src uses Ruby outside the subset. */
struct rbx *rbx_compile(const char *src, char *msg, size_t msglen);
void rbx_free(struct rbx *x);
/*
 * Evaluate against rec (record, tag, tag_parts, tag_prefix, tag_suffix, time, hostname).
 * Strings and JSON text of the result live in rec's arena. false where Ruby would raise
 * (NoMethodError on nil, a bad argument): the caller makes the field nil, as fluentd's
 * record_transformer logs the error and leaves the record unchanged.
 */
bool rbx_eval(const struct rbx *x, const struct ls_record *rec, const char *hostname,
              struct ls_value *out);

#endif
