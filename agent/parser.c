/* placeholder until the parser layer lands */
#include "parser.h"

const struct ls_param ls_parser_common_params[] = { LS_PARAM_END };

int ls_parser_setup(struct ls_instance *ins, struct ls_conf_section *sec, char *err, size_t errlen)
{
    LS_UNUSED(ins); LS_UNUSED(sec); LS_UNUSED(err); LS_UNUSED(errlen);
    return LS_OK;
}

void ls_parser_teardown(struct ls_instance *ins)
{
    LS_UNUSED(ins);
}

int ls_parser_parse(struct ls_instance *parser, const char *line, size_t len, struct ls_record *rec)
{
    return parser->plugin->parse(parser, line, len, rec);
}

int ls_parser_flush(struct ls_instance *parser, struct ls_record *rec)
{
    return parser->plugin->parse_flush ? parser->plugin->parse_flush(parser, rec) : LS_DECLINED;
}

bool ls_parser_is_multiline(const struct ls_instance *parser)
{
    return parser->plugin->parse_flush != NULL;
}
