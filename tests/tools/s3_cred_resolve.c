/*
 * aws_cred_resolve - resolve AWS credentials with the out_s3 chain and print
 * where they came from (tests/integration/test_s3_creds.py).
 *
 * Prints "source", "key", "token" (yes/no), "expiration" and
 * "secret_sha256" (a hash, so tests can check the secret without it ever
 * being printed), or "error<TAB>message" and exit status 1.
 *
 * With --put ENDPOINT BUCKET KEY DATA it also PUTs DATA to KEY with those
 * credentials through s3_addr + the SigV4 signer (libcurl easy), and prints
 * "status" plus "error_code" from the XML error body: an end-to-end check of
 * the protocol layer against a real, signature-checking server (moto).
 * Options mirror struct aws_cred_config; see usage().
 */
#include <curl/curl.h>
#include <getopt.h>
#include <libgen.h>
#include <unistd.h>

#include "../../plugins/out_s3/s3.h"

static void usage(void)
{
    fprintf(stderr,
            "usage: aws_cred_resolve [--key-id K --secret S [--session-token T]] [--profile P]\n"
            "  [--shared [--shared-path F] [--shared-profile P]]\n"
            "  [--instance-profile [--imds-endpoint URL] [--imds-retries N] [--imds-timeout-ms MS]]\n"
            "  [--web-identity --web-role-arn A --web-token-file F [--web-session-name N]]\n"
            "  [--assume-role-arn A [--assume-session-name N] [--assume-external-id X]\n"
            "   [--assume-duration S] [--assume-policy JSON]] [--sts-region R] [--sts-endpoint URL]\n"
            "  [--region R] [--put ENDPOINT BUCKET KEY DATA]\n");
}

static size_t collect(char *p, size_t size, size_t n, void *ud)
{
    return ls_buf_append(ud, p, size * n) == LS_OK ? size * n : 0;
}

static int do_put(const struct aws_creds *c, const char *region, char **argv)
{
    struct s3_addr a;
    char err[256];
    if (s3_addr_init(&a, argv[0], region, argv[1], false, err, sizeof(err)) != LS_OK) {
        printf("error\t%s\n", err);
        return 1;
    }
    const char *key = argv[2], *data = argv[3];
    char sha[65], md5[25];
    aws_sha256_hex(data, strlen(data), sha);
    s3_md5_base64(data, strlen(data), md5);
    char *path = s3_addr_path(&a, key);
    char *url = s3_addr_url(&a, key, NULL, 0);
    struct aws_kv h[] = { { "Host", a.host }, { "Content-MD5", md5 }, { "Content-Type", "text/plain" } };
    struct aws_request r = { .method = "PUT", .path = path, .headers = h, .nheaders = 3, .payload_hash = sha };
    struct aws_signed s;
    if (aws_sigv4_sign(&r, c, a.region, "s3", (int64_t)time(NULL), AWS_SIGV4_CONTENT_SHA, NULL, &s) != LS_OK) {
        printf("error\tsigning failed\n");
        return 1;
    }
    struct curl_slist *sl = NULL;
    char line[512];
    snprintf(line, sizeof(line), "Content-MD5: %s", md5);
    sl = curl_slist_append(sl, line);
    sl = curl_slist_append(sl, "Content-Type: text/plain");
    sl = curl_slist_append(sl, "Expect:");
    for (size_t i = 0; i < s.nheaders; i++) {
        sl = curl_slist_append(sl, s.headers[i]);
    }
    struct ls_buf body;
    ls_buf_init(&body, 1 << 20);
    CURL *e = curl_easy_init();
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "PUT");
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, data);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(data));
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, sl);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 20L);
    CURLcode rc = curl_easy_perform(e);
    long st = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &st);
    printf("url\t%s\n", url);
    printf("status\t%ld\n", rc == CURLE_OK ? st : -1L);
    struct s3_xml_error xe = { 0 };
    if (st >= 300 && s3_xml_parse_error(body.p, body.len, &xe) == LS_OK) {
        printf("error_code\t%s\n", xe.code);
    }
    s3_xml_error_release(&xe);
    curl_easy_cleanup(e);
    curl_slist_free_all(sl);
    ls_buf_release(&body);
    aws_signed_release(&s);
    ls_free(path);
    ls_free(url);
    s3_addr_release(&a);
    return 0;
}

int main(int argc, char **argv)
{
    enum { O_KEY = 1000, O_SECRET, O_TOKEN, O_PROFILE, O_SHARED, O_SHARED_PATH, O_SHARED_PROFILE, O_IP,
           O_IMDS_EP, O_IMDS_RETRIES, O_IMDS_TIMEOUT, O_WEB, O_WEB_ARN, O_WEB_FILE, O_WEB_SESSION, O_AR_ARN,
           O_AR_SESSION, O_AR_EXT, O_AR_DUR, O_AR_POLICY, O_STS_REGION, O_STS_EP, O_REGION, O_PUT };
    static const struct option opts[] = {
        { "key-id", 1, 0, O_KEY }, { "secret", 1, 0, O_SECRET }, { "session-token", 1, 0, O_TOKEN },
        { "profile", 1, 0, O_PROFILE }, { "shared", 0, 0, O_SHARED }, { "shared-path", 1, 0, O_SHARED_PATH },
        { "shared-profile", 1, 0, O_SHARED_PROFILE }, { "instance-profile", 0, 0, O_IP },
        { "imds-endpoint", 1, 0, O_IMDS_EP }, { "imds-retries", 1, 0, O_IMDS_RETRIES },
        { "imds-timeout-ms", 1, 0, O_IMDS_TIMEOUT }, { "web-identity", 0, 0, O_WEB },
        { "web-role-arn", 1, 0, O_WEB_ARN }, { "web-token-file", 1, 0, O_WEB_FILE },
        { "web-session-name", 1, 0, O_WEB_SESSION }, { "assume-role-arn", 1, 0, O_AR_ARN },
        { "assume-session-name", 1, 0, O_AR_SESSION }, { "assume-external-id", 1, 0, O_AR_EXT },
        { "assume-duration", 1, 0, O_AR_DUR }, { "assume-policy", 1, 0, O_AR_POLICY },
        { "sts-region", 1, 0, O_STS_REGION }, { "sts-endpoint", 1, 0, O_STS_EP }, { "region", 1, 0, O_REGION },
        { "put", 0, 0, O_PUT }, { 0, 0, 0, 0 },
    };
    struct aws_cred_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    const char *region = NULL;
    bool put = false;
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case O_KEY: cfg.key_id = optarg; break;
        case O_SECRET: cfg.secret = optarg; break;
        case O_TOKEN: cfg.session_token = optarg; break;
        case O_PROFILE: cfg.aws_profile = optarg; break;
        case O_SHARED: cfg.shared_credentials = true; break;
        case O_SHARED_PATH: cfg.shared_path = optarg; break;
        case O_SHARED_PROFILE: cfg.shared_profile = optarg; break;
        case O_IP: cfg.instance_profile = true; break;
        case O_IMDS_EP: cfg.imds_endpoint = optarg; break;
        case O_IMDS_RETRIES: cfg.imds_retries = (int)strtol(optarg, NULL, 10); break;
        case O_IMDS_TIMEOUT: cfg.imds_timeout_ms = strtol(optarg, NULL, 10); break;
        case O_WEB: cfg.web_identity = true; break;
        case O_WEB_ARN: cfg.web.role_arn = optarg; break;
        case O_WEB_FILE: cfg.web.token_file = optarg; break;
        case O_WEB_SESSION: cfg.web.role_session_name = optarg; break;
        case O_AR_ARN: cfg.assume_role = true; cfg.assume.role_arn = optarg; break;
        case O_AR_SESSION: cfg.assume.role_session_name = optarg; break;
        case O_AR_EXT: cfg.assume.external_id = optarg; break;
        case O_AR_DUR: cfg.assume.duration_seconds = (int)strtol(optarg, NULL, 10); break;
        case O_AR_POLICY: cfg.assume.policy = optarg; break;
        case O_STS_REGION: cfg.assume.sts_region = cfg.web.sts_region = optarg; break;
        case O_STS_EP: cfg.assume.sts_endpoint_url = cfg.web.sts_endpoint_url = optarg; break;
        case O_REGION: region = optarg; break;
        case O_PUT: put = true; break;
        default: usage(); return 2;
        }
    }
    if (put && argc - optind != 4) {
        usage();
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    s3_xml_global_init();
    /* credential lookups run through logship-http: the one built with the logship under test */
    if (getenv("LOGSHIP_HTTP_HELPER") == NULL) {
        /* without $LOGSHIP: the one of this build, $(BUILD)/tools/../logship-http */
        char exe[4096];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        char *h = NULL;
        if (getenv("LOGSHIP")) {
            h = ls_asprintf("%s-http", getenv("LOGSHIP"));
        } else if (n > 0) {
            exe[n] = '\0';
            h = ls_asprintf("%s/../logship-http", dirname(exe));
        }
        if (h) {
            setenv("LOGSHIP_HTTP_HELPER", h, 1);
            ls_free(h);
        }
    }
    struct aws_creds c;
    char err[512] = "";
    if (aws_cred_resolve(&cfg, &c, err, sizeof(err)) != LS_OK) {
        printf("error\t%s\n", err);
        curl_global_cleanup();
        return 1;
    }
    char sh[65], desc[160];
    aws_creds_describe(&c, desc, sizeof(desc));
    fprintf(stderr, "s3: credentials from %s\n", desc);   /* what the agent logs */
    aws_sha256_hex(c.secret, strlen(c.secret), sh);
    printf("source\t%s\nkey\t%s\ntoken\t%s\nexpiration\t%lld\nsecret_sha256\t%s\n", c.source, c.key,
           c.token ? "yes" : "no", (long long)c.expiration, sh);
    if (c.token) {
        char th[65];
        aws_sha256_hex(c.token, strlen(c.token), th);
        printf("token_sha256\t%s\n", th);
    }
    printf("needs_refresh\t%s\n", aws_cred_needs_refresh(&c, (int64_t)time(NULL)) ? "yes" : "no");
    int rc = put ? do_put(&c, region, argv + optind) : 0;
    aws_creds_release(&c);
    curl_global_cleanup();
    return rc;
}
