/*
 * s3.h - the S3 addressing of out_s3 (private to plugins/out_s3/); signing,
 * credentials and the XML readers are in agent/aws.h, shared with the other
 * AWS outputs.
 *
 *  - addressing (s3_addr.c): endpoint/region/bucket -> base URL, Host header,
 *    path-style or virtual-hosted style, and the raw path a key signs as.
 */
#ifndef LS_S3_H
#define LS_S3_H

#include "aws.h"

/* ------------------------------------------------------------------ */
/* Addressing                                                          */

struct s3_addr {
    char *scheme;         /* "http" / "https" */
    char *endpoint_host;  /* host of the endpoint, IPv6 in brackets */
    int port;             /* explicit non-default port, or 0 */
    char *region;         /* signing region */
    char *bucket;
    bool path_style;
    bool aws;             /* the endpoint is an AWS S3 host */
    char *host;           /* Host header value ("bucket.s3.amazonaws.com", "127.0.0.1:9000") */
    char *base_url;       /* scheme://host[:port][/bucket] ; a key URL is base_url + "/" + encoded key */
};

/*
 * endpoint: NULL/"" (AWS default for the region), "http://127.0.0.1:9000",
 * "https://s3.ap-northeast-1.amazonaws.com", or scheme-less "host[:port]"
 * (https). region: NULL/"" = derived from an AWS endpoint host, else
 * "us-east-1". Path style when force_path_style, when the endpoint host is an
 * IP address or localhost, when the bucket is not DNS-compatible, or when it
 * has dots and the scheme is https (wildcard certificates).
 */
int s3_addr_init(struct s3_addr *a, const char *endpoint, const char *region, const char *bucket,
                 bool force_path_style, char *err, size_t errlen);
void s3_addr_release(struct s3_addr *a);
/* Raw (unencoded) path a key is signed as: "/bucket/key" or "/key"; key NULL = bucket root. */
char *s3_addr_path(const struct s3_addr *a, const char *key);
/* SigV2 canonical resource path for key: always "/bucket/key" (bucket root "/bucket/" in vhost style). */
char *s3_addr_resource(const struct s3_addr *a, const char *key);
/*
 * Full URL for key (encoded like the canonical URI) with an optional raw
 * query (encoded here; value NULL = bare "name"). Keys may hold "//", "./" and
 * "../": requests set path_as_is so libcurl sends the path as signed.
 */
char *s3_addr_url(const struct s3_addr *a, const char *key, const struct aws_kv *query, size_t nquery);
/* Region from an AWS S3 host name, or NULL (caller frees). */
char *s3_region_from_host(const char *host);
/* DNS-compatible bucket name (3-63, lower case, digits, '-', '.', no IP form). */
bool s3_bucket_dns_compatible(const char *bucket);

#endif
