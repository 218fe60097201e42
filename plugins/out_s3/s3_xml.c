/*
 * s3_xml.c - the S3 and STS XML the agent reads and writes (libxml2).
 *
 * Responses come from the network, so they are treated as hostile: bodies
 * over S3_XML_MAX_BODY are refused before parsing; any document carrying a
 * DOCTYPE or ENTITY declaration is refused outright (S3 never sends one, and
 * that closes XXE and entity-expansion "billion laughs" without relying on
 * parser limits); libxml2 runs with XML_PARSE_NONET and without NOENT /
 * DTDLOAD, and its error printing is off (we report our own error).
 *
 * Elements are matched by local name, ignoring the namespace, because S3
 * puts results in the 2006-03-01 namespace and errors in none, and
 * S3-compatible stores vary. Leading whitespace is skipped: S3 keeps a slow
 * CompleteMultipartUpload alive by sending spaces before the XML.
 */
#include <pthread.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "s3.h"

static pthread_once_t s3_xml_once = PTHREAD_ONCE_INIT;

static void s3_xml_init_once(void)
{
    xmlInitParser();
}

void s3_xml_global_init(void)
{
    pthread_once(&s3_xml_once, s3_xml_init_once);
}

static bool s3_has_decl(const char *p, size_t len)
{
    return memmem(p, len, "<!DOCTYPE", 9) != NULL || memmem(p, len, "<!ENTITY", 8) != NULL ||
           memmem(p, len, "<!doctype", 9) != NULL;
}

/* Parse body into a document, or NULL (too big, empty, DTD, malformed). */
static xmlDocPtr s3_xml_read(const char *body, size_t len)
{
    s3_xml_global_init();
    if (body == NULL || len > S3_XML_MAX_BODY) {
        return NULL;
    }
    while (len > 0 && (*body == ' ' || *body == '\t' || *body == '\r' || *body == '\n')) {
        body++;
        len--;
    }
    if (len == 0 || s3_has_decl(body, len)) {
        return NULL;
    }
    xmlDocPtr doc = xmlReadMemory(body, (int)len, "s3.xml", NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA);
    if (doc == NULL) {
        return NULL;
    }
    if (doc->intSubset != NULL || doc->extSubset != NULL || xmlDocGetRootElement(doc) == NULL) {
        xmlFreeDoc(doc);
        return NULL;
    }
    return doc;
}

static bool s3_is(xmlNodePtr n, const char *name)
{
    return n && n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

static xmlNodePtr s3_child(xmlNodePtr parent, const char *name)
{
    for (xmlNodePtr c = parent ? parent->children : NULL; c; c = c->next) {
        if (s3_is(c, name)) {
            return c;
        }
    }
    return NULL;
}

/* Text of the first child element called name (ls_strdup'ed), or NULL if absent. */
static char *s3_child_text(xmlNodePtr parent, const char *name)
{
    xmlNodePtr c = s3_child(parent, name);
    if (c == NULL) {
        return NULL;
    }
    xmlChar *t = xmlNodeGetContent(c);
    char *r = ls_strdup(t ? (const char *)t : "");
    xmlFree(t);
    return r;
}

static bool s3_child_bool(xmlNodePtr parent, const char *name)
{
    char *t = s3_child_text(parent, name);
    bool v = t && strcmp(t, "true") == 0;
    ls_free(t);
    return v;
}

static int64_t s3_child_int(xmlNodePtr parent, const char *name, int64_t dflt)
{
    char *t = s3_child_text(parent, name);
    int64_t v = dflt;
    if (t && t[0]) {
        char *end = NULL;
        errno = 0;
        long long x = strtoll(t, &end, 10);
        if (errno == 0 && *end == '\0') {
            v = x;
        }
    }
    ls_free(t);
    return v;
}

void s3_xml_error_release(struct s3_xml_error *e)
{
    if (e == NULL) {
        return;
    }
    ls_free(e->code);
    ls_free(e->message);
    ls_free(e->request_id);
    ls_free(e->host_id);
    ls_free(e->region);
    ls_free(e->endpoint);
    ls_free(e->server_time);
    ls_free(e->request_time);
    memset(e, 0, sizeof(*e));
}

/* Fill e from an <Error> element (S3) or the <Error> inside <ErrorResponse> (STS). */
static bool s3_fill_error(xmlNodePtr root, struct s3_xml_error *e)
{
    xmlNodePtr err = root;
    if (s3_is(root, "ErrorResponse")) {
        err = s3_child(root, "Error");
    } else if (!s3_is(root, "Error")) {
        return false;
    }
    if (err == NULL) {
        return false;
    }
    if (e == NULL) {
        return true;
    }
    s3_xml_error_release(e);
    e->code = s3_child_text(err, "Code");
    if (e->code == NULL) {
        e->code = ls_strdup("");
    }
    e->message = s3_child_text(err, "Message");
    e->request_id = s3_child_text(err, "RequestId");
    if (e->request_id == NULL) {
        e->request_id = s3_child_text(root, "RequestId");   /* STS puts it beside <Error> */
    }
    e->host_id = s3_child_text(err, "HostId");
    e->region = s3_child_text(err, "Region");
    e->endpoint = s3_child_text(err, "Endpoint");
    e->server_time = s3_child_text(err, "ServerTime");
    e->request_time = s3_child_text(err, "RequestTime");
    return true;
}

int s3_xml_parse_error(const char *body, size_t len, struct s3_xml_error *e)
{
    xmlDocPtr doc = s3_xml_read(body, len);
    if (doc == NULL) {
        return LS_ERROR;
    }
    int rc = s3_fill_error(xmlDocGetRootElement(doc), e) ? LS_OK : LS_DECLINED;
    xmlFreeDoc(doc);
    return rc;
}

int s3_xml_parse_initiate(const char *body, size_t len, char **upload_id, struct s3_xml_error *e)
{
    *upload_id = NULL;
    xmlDocPtr doc = s3_xml_read(body, len);
    if (doc == NULL) {
        return LS_ERROR;
    }
    xmlNodePtr root = xmlDocGetRootElement(doc);
    int rc = LS_ERROR;
    if (s3_is(root, "InitiateMultipartUploadResult")) {
        char *id = s3_child_text(root, "UploadId");
        if (id && id[0]) {
            *upload_id = id;
            rc = LS_OK;
        } else {
            ls_free(id);
        }
    } else {
        s3_fill_error(root, e);
    }
    xmlFreeDoc(doc);
    return rc;
}

int s3_xml_parse_complete(const char *body, size_t len, char **etag, struct s3_xml_error *e)
{
    if (etag) {
        *etag = NULL;
    }
    xmlDocPtr doc = s3_xml_read(body, len);
    if (doc == NULL) {
        return LS_ERROR;
    }
    xmlNodePtr root = xmlDocGetRootElement(doc);
    int rc = LS_ERROR;
    /* moto (and its users' S3 doubles) name the root ...Response; anything but <Error> with
     * a completed upload's fields is success, anything else is not */
    if (s3_is(root, "CompleteMultipartUploadResult") ||
        s3_is(root, "CompleteMultipartUploadResponse")) {
        rc = LS_OK;
        if (etag) {
            *etag = s3_child_text(root, "ETag");
        }
    } else {
        s3_fill_error(root, e);
    }
    xmlFreeDoc(doc);
    return rc;
}

void s3_list_result_release(struct s3_list_result *r)
{
    for (size_t i = 0; i < r->n; i++) {
        ls_free(r->objects[i].key);
        ls_free(r->objects[i].etag);
        ls_free(r->objects[i].last_modified);
    }
    ls_free(r->objects);
    ls_free(r->next_token);
    memset(r, 0, sizeof(*r));
}

int s3_xml_parse_list(const char *body, size_t len, struct s3_list_result *r, struct s3_xml_error *e)
{
    memset(r, 0, sizeof(*r));
    xmlDocPtr doc = s3_xml_read(body, len);
    if (doc == NULL) {
        return LS_ERROR;
    }
    xmlNodePtr root = xmlDocGetRootElement(doc);
    if (!s3_is(root, "ListBucketResult")) {
        s3_fill_error(root, e);
        xmlFreeDoc(doc);
        return LS_ERROR;
    }
    size_t cap = 0;
    for (xmlNodePtr c = root->children; c; c = c->next) {
        if (!s3_is(c, "Contents")) {
            continue;
        }
        char *key = s3_child_text(c, "Key");
        if (key == NULL) {
            continue;
        }
        if (r->n == cap) {
            cap = cap ? cap * 2 : 16;
            r->objects = ls_realloc(r->objects, cap * sizeof(*r->objects));
        }
        struct s3_object *o = &r->objects[r->n++];
        o->key = key;
        o->size = s3_child_int(c, "Size", -1);
        o->etag = s3_child_text(c, "ETag");
        o->last_modified = s3_child_text(c, "LastModified");
    }
    r->truncated = s3_child_bool(root, "IsTruncated");
    r->next_token = s3_child_text(root, "NextContinuationToken");
    if (r->next_token == NULL) {
        r->next_token = s3_child_text(root, "NextMarker");
    }
    xmlFreeDoc(doc);
    return LS_OK;
}

void s3_parts_release(struct s3_parts *p)
{
    for (size_t i = 0; i < p->n; i++) {
        ls_free(p->parts[i].etag);
    }
    ls_free(p->parts);
    memset(p, 0, sizeof(*p));
}

int s3_xml_parse_parts(const char *body, size_t len, struct s3_parts *p, struct s3_xml_error *e)
{
    memset(p, 0, sizeof(*p));
    xmlDocPtr doc = s3_xml_read(body, len);
    if (doc == NULL) {
        return LS_ERROR;
    }
    xmlNodePtr root = xmlDocGetRootElement(doc);
    if (!s3_is(root, "ListPartsResult") && !s3_is(root, "ListPartsResponse")) {   /* moto: ...Response */
        s3_fill_error(root, e);
        xmlFreeDoc(doc);
        return LS_ERROR;
    }
    size_t cap = 0;
    for (xmlNodePtr c = root->children; c; c = c->next) {
        if (!s3_is(c, "Part")) {
            continue;
        }
        int64_t num = s3_child_int(c, "PartNumber", -1);
        if (num < 1 || num > 10000) {
            continue;   /* S3 part numbers are 1..10000; anything else is garbage */
        }
        if (p->n == cap) {
            cap = cap ? cap * 2 : 16;
            p->parts = ls_realloc(p->parts, cap * sizeof(*p->parts));
        }
        struct s3_part *pt = &p->parts[p->n++];
        pt->number = (int)num;
        pt->etag = s3_child_text(c, "ETag");
        pt->size = s3_child_int(c, "Size", -1);
    }
    p->truncated = s3_child_bool(root, "IsTruncated");
    int64_t m = s3_child_int(root, "NextPartNumberMarker", 0);
    p->next_marker = (m >= 0 && m <= 10000) ? (int)m : 0;
    xmlFreeDoc(doc);
    return LS_OK;
}

static int s3_xml_escape(struct ls_buf *out, const char *s)
{
    for (; s && *s; s++) {
        int rc;
        switch (*s) {
        case '&':
            rc = ls_buf_append(out, "&amp;", 5);
            break;
        case '<':
            rc = ls_buf_append(out, "&lt;", 4);
            break;
        case '>':
            rc = ls_buf_append(out, "&gt;", 4);
            break;
        default:
            rc = ls_buf_putc(out, *s);
            break;
        }
        if (rc != LS_OK) {
            return LS_ERROR;
        }
    }
    return LS_OK;
}

int s3_xml_build_complete(struct ls_buf *out, const struct s3_part *parts, size_t n)
{
    if (ls_buf_printf(out, "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">") != LS_OK) {
        return LS_ERROR;
    }
    for (size_t i = 0; i < n; i++) {
        if (ls_buf_printf(out, "<Part><ETag>") != LS_OK || s3_xml_escape(out, parts[i].etag) != LS_OK ||
            ls_buf_printf(out, "</ETag><PartNumber>%d</PartNumber></Part>", parts[i].number) != LS_OK) {
            return LS_ERROR;
        }
    }
    return ls_buf_printf(out, "</CompleteMultipartUpload>") == LS_OK ? LS_OK : LS_ERROR;
}

int s3_xml_parse_sts_creds(const char *body, size_t len, struct s3_creds *c, struct s3_xml_error *e)
{
    memset(c, 0, sizeof(*c));
    xmlDocPtr doc = s3_xml_read(body, len);
    if (doc == NULL) {
        return LS_ERROR;
    }
    xmlNodePtr root = xmlDocGetRootElement(doc);
    xmlNodePtr res = NULL;
    if (s3_is(root, "AssumeRoleResponse")) {
        res = s3_child(root, "AssumeRoleResult");
    } else if (s3_is(root, "AssumeRoleWithWebIdentityResponse")) {
        res = s3_child(root, "AssumeRoleWithWebIdentityResult");
    } else {
        s3_fill_error(root, e);
    }
    xmlNodePtr cr = s3_child(res, "Credentials");
    int rc = LS_ERROR;
    if (cr) {
        c->key = s3_child_text(cr, "AccessKeyId");
        c->secret = s3_child_text(cr, "SecretAccessKey");
        c->token = s3_child_text(cr, "SessionToken");
        char *exp = s3_child_text(cr, "Expiration");
        c->expiration = exp ? s3_parse_iso8601(exp) : 0;
        ls_free(exp);
        if (c->key && c->key[0] && c->secret && c->secret[0] && c->expiration >= 0) {
            rc = LS_OK;
        } else {
            s3_creds_release(c);
        }
    }
    xmlFreeDoc(doc);
    return rc;
}
