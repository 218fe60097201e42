/*
 * es_aws.h - SigV4 for the Elasticsearch outputs: fluent-plugin-aws-elasticsearch-service's
 * <endpoint> sections and fluent-plugin-opensearch's <endpoint> (Amazon OpenSearch Service,
 * "es", or Serverless, "aoss"). Private to plugins/out_elasticsearch/.
 */
#ifndef LS_ES_AWS_H
#define LS_ES_AWS_H

#include "plugin.h"

struct es_aws;

/*
 * Bind every <endpoint> of sec. *bases gets one "scheme://host[:port][/path]" per endpoint
 * (the hosts the output sends to, in turn), replacing host/port/hosts. LS_OK, or LS_ERROR
 * with "file:line: ..." in err.
 */
int es_aws_init(struct ls_conf_section *sec, bool opensearch, struct es_aws **out, char ***bases,
                size_t *nbases, char *err, size_t errlen);
void es_aws_destroy(struct es_aws *a);

/*
 * Worker thread (credentials may need STS, IMDS or ECS calls): sign a request to endpoint
 * ep for url, whose body has the hex SHA-256 body_sha256 (NULL: no body). Appends the
 * Host, x-amz-date, x-amz-content-sha256, x-amz-security-token and Authorization header
 * lines to hdrs. LS_OK or LS_ERROR with err filled (no credentials).
 */
int es_aws_sign(struct es_aws *a, size_t ep, const char *method, const char *url,
                const char *body_sha256, struct ls_buf *hdrs, char *err, size_t errlen);

#endif
