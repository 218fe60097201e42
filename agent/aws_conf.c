/*
 * aws_conf.c - the credential sections fluentd's AWS plugins share (fluent-plugin-s3,
 * fluent-plugin-kinesis...): <shared_credentials>, <instance_profile_credentials>,
 * <assume_role_credentials>, <web_identity_credentials>, bound and turned into the
 * aws_cred_config that aws_cred.c resolves.
 */
#include "aws.h"
#include "log.h"
#include "param.h"
#include "plugin.h"

static const struct ls_param aws_shared_params[] = {
    { "path", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct aws_shared_conf, path),
      "credentials file (default ~/.aws/credentials)", NULL, NULL, 0, 0 },
    { "profile_name", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct aws_shared_conf, profile_name),
      "profile (default $AWS_PROFILE or default)", NULL, NULL, 0, 0 },
    LS_PARAM_END
};

static const struct ls_param aws_imds_params[] = {
    { "retries", LS_P_INT, "5", 0, offsetof(struct aws_imds_conf, retries), "retries", NULL, NULL,
      0, 0 },
    { "ip_address", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct aws_imds_conf, ip_address),
      "metadata service address (default 169.254.169.254)", NULL, NULL, 0, 0 },
    { "port", LS_P_INT, "80", 0, offsetof(struct aws_imds_conf, port), "metadata service port",
      NULL, NULL, 1, 65535 },
    { "http_open_timeout", LS_P_TIME, "5", 0, offsetof(struct aws_imds_conf, http_open_timeout),
      "connect timeout", NULL, NULL, 0, 0 },
    { "http_read_timeout", LS_P_TIME, "5", 0, offsetof(struct aws_imds_conf, http_read_timeout),
      "read timeout", NULL, NULL, 0, 0 },
    LS_PARAM_END
};

#define AWS_STS_ROWS                                                                               \
    { "role_arn", LS_P_STR, NULL, LS_PF_REQUIRED, offsetof(struct aws_sts_conf, role_arn),         \
      "role to assume", NULL, NULL, 0, 0 },                                                       \
    { "policy", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct aws_sts_conf, policy),             \
      "inline session policy (JSON)", NULL, NULL, 0, 0 },                                         \
    { "duration_seconds", LS_P_INT, "0", 0, offsetof(struct aws_sts_conf, duration_seconds),       \
      "session duration (0: STS default)", NULL, NULL, 0, 0 },                                    \
    { "sts_region", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct aws_sts_conf, sts_region),     \
      "STS region (default us-east-1)", NULL, NULL, 0, 0 },                                       \
    { "sts_endpoint_url", LS_P_STR, NULL, LS_PF_NULLABLE,                                         \
      offsetof(struct aws_sts_conf, sts_endpoint_url), "STS endpoint", NULL, NULL, 0, 0 },         \
    { "sts_http_proxy", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct aws_sts_conf, sts_http_proxy), \
      "not supported (use the https_proxy environment variable)", NULL, NULL, 0, 0 }

static const struct ls_param aws_assume_params[] = {
    AWS_STS_ROWS,
    { "role_session_name", LS_P_STR, NULL, LS_PF_REQUIRED,
      offsetof(struct aws_sts_conf, role_session_name), "session name", NULL, NULL, 0, 0 },
    { "external_id", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct aws_sts_conf, external_id),
      "external id", NULL, NULL, 0, 0 },
    LS_PARAM_END
};

static const struct ls_param aws_web_params[] = {
    AWS_STS_ROWS,
    { "role_session_name", LS_P_STR, NULL, LS_PF_NULLABLE,
      offsetof(struct aws_sts_conf, role_session_name), "session name", NULL, NULL, 0, 0 },
    { "web_identity_token_file", LS_P_STR, NULL, LS_PF_REQUIRED,
      offsetof(struct aws_sts_conf, web_identity_token_file), "OIDC token file", NULL, NULL, 0, 0 },
    LS_PARAM_END
};

static int bind_sub(struct ls_conf_section *sec, const char *name, const struct ls_param *table,
                    void *dst, bool *present, char *err, size_t errlen)
{
    struct ls_conf_section *sub = sec ? ls_conf_child(sec, name) : NULL;

    *present = sub != NULL;
    if (sub == NULL) {
        return LS_OK;
    }
    return ls_param_bind(table, sub, dst, err, errlen);
}

int aws_cred_sections_bind(struct ls_conf_section *sec, struct aws_cred_sections *s, char *err,
                           size_t errlen)
{
    if (bind_sub(sec, "shared_credentials", aws_shared_params, &s->shared, &s->has_shared, err,
                 errlen) != LS_OK ||
        bind_sub(sec, "instance_profile_credentials", aws_imds_params, &s->imds, &s->has_imds,
                 err, errlen) != LS_OK ||
        bind_sub(sec, "assume_role_credentials", aws_assume_params, &s->assume, &s->has_assume,
                 err, errlen) != LS_OK ||
        bind_sub(sec, "web_identity_credentials", aws_web_params, &s->web, &s->has_web, err,
                 errlen) != LS_OK) {
        return LS_ERROR;
    }
    return LS_OK;
}

static void sts_fill(struct aws_sts_config *d, const struct aws_sts_conf *c)
{
    d->role_arn = c->role_arn;
    d->role_session_name = c->role_session_name;
    d->external_id = c->external_id;
    d->policy = c->policy;
    d->duration_seconds = (int)c->duration_seconds;
    d->sts_region = c->sts_region;
    d->sts_endpoint_url = c->sts_endpoint_url;
    d->token_file = c->web_identity_token_file;
}

void aws_cred_sections_fill(struct ls_instance *ins, struct aws_cred_sections *s,
                            struct aws_cred_config *cc)
{
    cc->shared_credentials = s->has_shared;
    cc->shared_path = s->shared.path;
    cc->shared_profile = s->shared.profile_name;
    cc->instance_profile = s->has_imds;
    if (s->has_imds) {
        if (s->imds.ip_address) {
            ls_free(s->imds_endpoint);
            s->imds_endpoint = ls_asprintf(strchr(s->imds.ip_address, ':') ? "http://[%s]:%lld"
                                                                           : "http://%s:%lld",
                                           s->imds.ip_address, (long long)s->imds.port);
            cc->imds_endpoint = s->imds_endpoint;
        }
        cc->imds_retries = (int)s->imds.retries;
        cc->imds_timeout_ms = (long)((s->imds.http_open_timeout + s->imds.http_read_timeout) * 1000);
    }
    cc->web_identity = s->has_web;
    if (s->has_web) {
        sts_fill(&cc->web, &s->web);
    }
    cc->assume_role = s->has_assume;
    if (s->has_assume) {
        sts_fill(&cc->assume, &s->assume);
    }
    if ((s->has_web && s->web.sts_http_proxy) || (s->has_assume && s->assume.sts_http_proxy)) {
        ls_plg_warn(ins, "sts_http_proxy is not supported; STS requests use the https_proxy "
                    "environment variable");
    }
}

void aws_cred_sections_release(struct aws_cred_sections *s)
{
    ls_free(s->imds_endpoint);
    s->imds_endpoint = NULL;
    ls_param_release(aws_shared_params, &s->shared);
    ls_param_release(aws_imds_params, &s->imds);
    ls_param_release(aws_assume_params, &s->assume);
    ls_param_release(aws_web_params, &s->web);
}
