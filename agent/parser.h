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

int ls_parser_setup(struct ls_instance *ins, struct ls_conf_section *sec, char *err, size_t errlen);
void ls_parser_teardown(struct ls_instance *ins);
/* Common parameter table (for --describe and docs). */
extern const struct ls_param ls_parser_common_params[];

#endif
