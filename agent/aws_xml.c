/*
 * aws_xml.c - the S3 and STS XML the agent reads and writes (expat).
 *
 * The agent reads a handful of fields out of small responses, so a streaming
 * parser is enough and no tree is built: each reader declares the elements
 * it wants as a small static tree (struct s3_xspec), and the expat callbacks
 * walk it while the document streams past, keeping the text of just those
 * elements. The result is the same as "text of the first child element
 * called X of the first child called Y of the root" on a DOM: for one parent
 * only the first child of a given name is followed (record elements such as
 * <Contents> and <Part> are the exception: every one is taken), and an
 * element's text is all the character data inside it, nested elements
 * included (what a DOM's text content would give).
 *
 * Responses come from the network, so they are treated as hostile: bodies
 * over S3_XML_MAX_BODY are refused before parsing; any document carrying a
 * DOCTYPE or ENTITY declaration is refused outright, first by a scan of the
 * raw bytes and then by expat handlers that stop the parser (S3 never sends
 * one, and that closes XXE and entity expansion without relying on parser
 * limits); no external entity handler is installed, so nothing is ever
 * loaded. The text kept for one element is capped (S3_XML_MAX_TEXT) and so
 * is element nesting (S3_XML_MAX_DEPTH, libxml2's default limit), so memory
 * stays a small multiple of the field sizes whatever the input.
 *
 * Elements are matched by local name, ignoring the namespace, because S3
 * puts results in the 2006-03-01 namespace and errors in none, STS uses its
 * own, and S3-compatible stores vary. The parser runs without namespace
 * processing (plain XML_ParserCreate) and a prefix is cut off the qualified
 * name, so <s3:Code xmlns:s3="..."> is "Code" too. Namespace processing was
 * tried first, but expat then makes every namespace mistake anywhere in the
 * document (an attribute "xmln:", an unbound prefix) fatal where libxml2
 * only warned; a differential fuzz of the two found that the main
 * difference. The one left: an element whose prefix is not declared now
 * matches by its local name (libxml2 kept "a:Code" and did not match it).
 * Leading whitespace is skipped: S3 keeps a slow CompleteMultipartUpload
 * alive by sending spaces before the XML.
 */
#include <expat.h>

#include "aws.h"

/* Longest text kept for one element: keys are at most 1 KiB, session tokens a few KiB. */
#define S3_XML_MAX_TEXT (64u << 10)
/* Deepest element nesting accepted (S3 documents are 4 deep). */
#define S3_XML_MAX_DEPTH 256
/* Deepest element any reader asks for, plus one. */
#define S3_XML_MAX_MATCH 8

/* Where the text of a wanted element goes (0: nowhere). */
enum s3_slot {
    SL_NONE = 0,
    SL_ERR_CODE,
    SL_ERR_MESSAGE,
    SL_ERR_REQUEST_ID,
    SL_ERR_HOST_ID,
    SL_ERR_REGION,
    SL_ERR_ENDPOINT,
    SL_ERR_SERVER_TIME,
    SL_ERR_REQUEST_TIME,
    SL_STS_REQUEST_ID,
    SL_UPLOAD_ID,
    SL_ETAG,
    SL_TRUNCATED,
    SL_NEXT_TOKEN,
    SL_NEXT_MARKER,
    SL_NEXT_PART_MARKER,
    SL_OBJ_KEY,
    SL_OBJ_SIZE,
    SL_OBJ_ETAG,
    SL_OBJ_LAST_MODIFIED,
    SL_PART_NUMBER,
    SL_PART_ETAG,
    SL_PART_SIZE,
    SL_CRED_KEY,
    SL_CRED_SECRET,
    SL_CRED_TOKEN,
    SL_CRED_EXPIRATION,
    SL_COUNT
};

/* What was seen, for the readers to decide on the document's kind. */
enum {
    F_ERROR = 1u << 0,            /* root <Error> (S3) */
    F_ERROR_RESPONSE = 1u << 1,   /* root <ErrorResponse> (STS) */
    F_STS_ERROR = 1u << 2,        /* <Error> inside <ErrorResponse> */
    F_RESULT = 1u << 3,           /* root is the reader's own result element */
};

struct s3_xspec {
    const char *name;             /* local name; NULL ends a list */
    int slot;                     /* keep the element's text here (leaves only) */
    unsigned flag;                /* set in s3_xp.flags when the element is matched */
    bool record;                  /* every occurrence is matched, and ends with on_record */
    const struct s3_xspec *kids;  /* wanted children, or NULL */
};

#define LEAF(n, s) { (n), (s), 0, false, NULL }
#define END { NULL, SL_NONE, 0, false, NULL }

static const struct s3_xspec s3_err_fields[] = {
    LEAF("Code", SL_ERR_CODE), LEAF("Message", SL_ERR_MESSAGE), LEAF("RequestId", SL_ERR_REQUEST_ID),
    LEAF("HostId", SL_ERR_HOST_ID), LEAF("Region", SL_ERR_REGION), LEAF("Endpoint", SL_ERR_ENDPOINT),
    LEAF("ServerTime", SL_ERR_SERVER_TIME), LEAF("RequestTime", SL_ERR_REQUEST_TIME), END
};

static const struct s3_xspec s3_err_response[] = {
    { "Error", SL_NONE, F_STS_ERROR, false, s3_err_fields },
    LEAF("RequestId", SL_STS_REQUEST_ID),   /* STS puts it beside <Error> */
    END
};

#define ERROR_ROOTS \
    { "Error", SL_NONE, F_ERROR, false, s3_err_fields }, \
    { "ErrorResponse", SL_NONE, F_ERROR_RESPONSE, false, s3_err_response }

static const struct s3_xspec s3_roots_error[] = { ERROR_ROOTS, END };

static const struct s3_xspec s3_initiate_kids[] = { LEAF("UploadId", SL_UPLOAD_ID), END };
static const struct s3_xspec s3_roots_initiate[] = {
    { "InitiateMultipartUploadResult", SL_NONE, F_RESULT, false, s3_initiate_kids }, ERROR_ROOTS, END
};

/* moto (and its users' S3 doubles) name the root ...Response */
static const struct s3_xspec s3_complete_kids[] = { LEAF("ETag", SL_ETAG), END };
static const struct s3_xspec s3_roots_complete[] = {
    { "CompleteMultipartUploadResult", SL_NONE, F_RESULT, false, s3_complete_kids },
    { "CompleteMultipartUploadResponse", SL_NONE, F_RESULT, false, s3_complete_kids }, ERROR_ROOTS, END
};

static const struct s3_xspec s3_object_kids[] = {
    LEAF("Key", SL_OBJ_KEY), LEAF("Size", SL_OBJ_SIZE), LEAF("ETag", SL_OBJ_ETAG),
    LEAF("LastModified", SL_OBJ_LAST_MODIFIED), END
};
static const struct s3_xspec s3_list_kids[] = {
    { "Contents", SL_NONE, 0, true, s3_object_kids }, LEAF("IsTruncated", SL_TRUNCATED),
    LEAF("NextContinuationToken", SL_NEXT_TOKEN), LEAF("NextMarker", SL_NEXT_MARKER), END
};
static const struct s3_xspec s3_roots_list[] = {
    { "ListBucketResult", SL_NONE, F_RESULT, false, s3_list_kids }, ERROR_ROOTS, END
};

static const struct s3_xspec s3_part_kids[] = {
    LEAF("PartNumber", SL_PART_NUMBER), LEAF("ETag", SL_PART_ETAG), LEAF("Size", SL_PART_SIZE), END
};
static const struct s3_xspec s3_parts_kids[] = {
    { "Part", SL_NONE, 0, true, s3_part_kids }, LEAF("IsTruncated", SL_TRUNCATED),
    LEAF("NextPartNumberMarker", SL_NEXT_PART_MARKER), END
};
static const struct s3_xspec s3_roots_parts[] = {
    { "ListPartsResult", SL_NONE, F_RESULT, false, s3_parts_kids },
    { "ListPartsResponse", SL_NONE, F_RESULT, false, s3_parts_kids },   /* moto */
    ERROR_ROOTS, END
};

static const struct s3_xspec s3_cred_kids[] = {
    LEAF("AccessKeyId", SL_CRED_KEY), LEAF("SecretAccessKey", SL_CRED_SECRET),
    LEAF("SessionToken", SL_CRED_TOKEN), LEAF("Expiration", SL_CRED_EXPIRATION), END
};
static const struct s3_xspec s3_sts_result_kids[] = {
    { "Credentials", SL_NONE, 0, false, s3_cred_kids }, END
};
static const struct s3_xspec s3_sts_ar_kids[] = {
    { "AssumeRoleResult", SL_NONE, 0, false, s3_sts_result_kids }, END
};
static const struct s3_xspec s3_sts_web_kids[] = {
    { "AssumeRoleWithWebIdentityResult", SL_NONE, 0, false, s3_sts_result_kids }, END
};
static const struct s3_xspec s3_roots_sts[] = {
    { "AssumeRoleResponse", SL_NONE, F_RESULT, false, s3_sts_ar_kids },
    { "AssumeRoleWithWebIdentityResponse", SL_NONE, F_RESULT, false, s3_sts_web_kids }, ERROR_ROOTS, END
};

/* One matched element on the path from the root: which spec, and which of its kids were seen. */
struct s3_xframe {
    const struct s3_xspec *node;
    uint32_t seen;                /* bit i: kids[i] already matched under this element */
};

struct s3_xp {
    XML_Parser parser;
    const struct s3_xspec *roots;
    int depth;                    /* current element depth, root = 1 */
    int nmatched;                 /* elements 1..nmatched on the current path are matched */
    struct s3_xframe stack[S3_XML_MAX_MATCH];
    int capture_depth;            /* depth of the element whose text is kept, 0: none */
    int capture_slot;
    struct ls_buf text;
    char *slot[SL_COUNT];
    unsigned flags;
    bool failed;                  /* refused by a handler (DTD, caps) */
    void (*on_record)(struct s3_xp *x);
    void *out;                    /* the reader's result, for on_record */
    size_t out_cap;
};

static void s3_xp_fail(struct s3_xp *x)
{
    x->failed = true;
    XML_StopParser(x->parser, XML_FALSE);
}

static void s3_xp_clear_slots(struct s3_xp *x, const struct s3_xspec *kids)
{
    for (; kids && kids->name; kids++) {
        if (kids->slot != SL_NONE) {
            ls_free(x->slot[kids->slot]);
            x->slot[kids->slot] = NULL;
        }
    }
}

static void XMLCALL s3_xp_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
    struct s3_xp *x = ud;
    if (x->failed) {
        return;
    }
    if (++x->depth > S3_XML_MAX_DEPTH) {
        s3_xp_fail(x);
        return;
    }
    /* only a child of a matched element (or the root) can be wanted */
    if (x->depth != x->nmatched + 1 || x->nmatched >= S3_XML_MAX_MATCH) {
        return;
    }
    struct s3_xframe *parent = x->nmatched > 0 ? &x->stack[x->nmatched - 1] : NULL;
    const struct s3_xspec *kids = parent ? parent->node->kids : x->roots;
    if (kids == NULL) {
        return;
    }
    /* "prefix:local" -> "local" (as libxml2 did: after the first colon; ":x" has no prefix) */
    const char *local = strchr(name, ':');
    local = local && local != name ? local + 1 : name;
    for (uint32_t i = 0; kids[i].name; i++) {
        const struct s3_xspec *k = &kids[i];
        if (strcmp(k->name, local) != 0) {
            continue;
        }
        if (!k->record && parent) {
            if (parent->seen & (1u << i)) {
                return;   /* only the first child of a name counts */
            }
            parent->seen |= 1u << i;
        }
        x->stack[x->nmatched++] = (struct s3_xframe){ .node = k, .seen = 0 };
        x->flags |= k->flag;
        if (k->record) {
            s3_xp_clear_slots(x, k->kids);
        }
        if (k->slot != SL_NONE && x->slot[k->slot] == NULL) {
            x->capture_depth = x->depth;
            x->capture_slot = k->slot;
            ls_buf_reset(&x->text);
        }
        return;
    }
}

static void XMLCALL s3_xp_end(void *ud, const XML_Char *name)
{
    struct s3_xp *x = ud;
    if (x->failed) {
        return;
    }
    if (x->capture_depth == x->depth) {
        x->slot[x->capture_slot] = ls_strndup(x->text.len ? x->text.p : "", x->text.len);
        x->capture_depth = 0;
    }
    if (x->nmatched == x->depth) {
        const struct s3_xspec *node = x->stack[--x->nmatched].node;
        if (node->record) {
            x->on_record(x);
            s3_xp_clear_slots(x, node->kids);
        }
    }
    x->depth--;
}

/* expat splits text (and entity references) into several calls: append them all. */
static void XMLCALL s3_xp_text(void *ud, const XML_Char *s, int len)
{
    struct s3_xp *x = ud;
    if (x->failed || x->capture_depth == 0 || len <= 0) {
        return;
    }
    if (ls_buf_append(&x->text, s, (size_t)len) != LS_OK) {
        s3_xp_fail(x);   /* over S3_XML_MAX_TEXT: no S3 field is that long */
    }
}

static void XMLCALL s3_xp_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
                                  const XML_Char *pubid, int has_internal_subset)
{
    s3_xp_fail(ud);
}

static void XMLCALL s3_xp_entity(void *ud, const XML_Char *name, int is_param, const XML_Char *value,
                                 int value_len, const XML_Char *base, const XML_Char *sysid,
                                 const XML_Char *pubid, const XML_Char *notation)
{
    s3_xp_fail(ud);
}

/* <?xml version="..."?>: only XML 1.x, as libxml2 required (expat takes any version name). */
static void XMLCALL s3_xp_xmldecl(void *ud, const XML_Char *version, const XML_Char *encoding, int standalone)
{
    if (version == NULL) {
        return;
    }
    bool ok = version[0] == '1' && version[1] == '.' && version[2] != '\0';
    for (const char *v = version + 2; ok && *v; v++) {
        ok = *v >= '0' && *v <= '9';
    }
    if (!ok) {
        s3_xp_fail(ud);
    }
}

static bool s3_has_decl(const char *p, size_t len)
{
    return memmem(p, len, "<!DOCTYPE", 9) != NULL || memmem(p, len, "<!ENTITY", 8) != NULL ||
           memmem(p, len, "<!doctype", 9) != NULL;
}

static void s3_xp_init(struct s3_xp *x, const struct s3_xspec *roots, void (*on_record)(struct s3_xp *),
                       void *out)
{
    memset(x, 0, sizeof(*x));
    x->roots = roots;
    x->on_record = on_record;
    x->out = out;
    ls_buf_init(&x->text, S3_XML_MAX_TEXT);
}

static void s3_xp_release(struct s3_xp *x)
{
    for (int i = 0; i < SL_COUNT; i++) {
        ls_free(x->slot[i]);
    }
    ls_buf_release(&x->text);
    memset(x, 0, sizeof(*x));
}

/* Stream body through the spec. false: too big, empty, DTD, malformed or over a cap. */
static bool s3_xp_run(struct s3_xp *x, const char *body, size_t len)
{
    if (body == NULL || len > S3_XML_MAX_BODY) {
        return false;
    }
    while (len > 0 && (*body == ' ' || *body == '\t' || *body == '\r' || *body == '\n')) {
        body++;
        len--;
    }
    if (len == 0 || s3_has_decl(body, len)) {
        return false;
    }
    /* the document ends at a NUL byte (libxml2 did the same, and some bodies arrive padded):
     * a NUL inside the document still leaves it unfinished, so malformed. UTF-16 (BOM or
     * "<" as a 16-bit unit) is full of zero bytes and is left to expat whole. */
    const unsigned char *u = (const unsigned char *)body;
    bool utf16 = len >= 2 && ((u[0] == 0xfe && u[1] == 0xff) || (u[0] == 0xff && u[1] == 0xfe) ||
                              (u[0] == '<' && u[1] == 0) || (u[0] == 0 && u[1] == '<'));
    const char *nul = utf16 ? NULL : memchr(body, '\0', len);
    if (nul) {
        len = (size_t)(nul - body);
    }
    x->parser = XML_ParserCreate(NULL);
    if (x->parser == NULL) {
        return false;
    }
    XML_SetUserData(x->parser, x);
    XML_SetElementHandler(x->parser, s3_xp_start, s3_xp_end);
    XML_SetCharacterDataHandler(x->parser, s3_xp_text);
    XML_SetXmlDeclHandler(x->parser, s3_xp_xmldecl);
    XML_SetStartDoctypeDeclHandler(x->parser, s3_xp_doctype);
    XML_SetEntityDeclHandler(x->parser, s3_xp_entity);
    XML_SetParamEntityParsing(x->parser, XML_PARAM_ENTITY_PARSING_NEVER);
    bool ok = XML_Parse(x->parser, body, (int)len, XML_TRUE) == XML_STATUS_OK && !x->failed;
    XML_ParserFree(x->parser);
    x->parser = NULL;
    return ok;
}

/* Take ownership of a slot's text (NULL if the element was absent). */
static char *s3_xp_take(struct s3_xp *x, int slot)
{
    char *s = x->slot[slot];
    x->slot[slot] = NULL;
    return s;
}

static int64_t s3_xp_int(struct s3_xp *x, int slot, int64_t dflt)
{
    const char *t = x->slot[slot];
    int64_t v = dflt;
    if (t && t[0]) {
        char *end = NULL;
        errno = 0;
        long long n = strtoll(t, &end, 10);
        if (errno == 0 && *end == '\0') {
            v = n;
        }
    }
    return v;
}

static bool s3_xp_bool(struct s3_xp *x, int slot)
{
    return x->slot[slot] && strcmp(x->slot[slot], "true") == 0;
}

/* expat needs no process-wide setup (each parser is independent); kept for the API. */
void s3_xml_global_init(void)
{
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

/* Fill e from a root <Error> (S3) or the <Error> inside a root <ErrorResponse> (STS). */
static bool s3_fill_error(struct s3_xp *x, struct s3_xml_error *e)
{
    if (!(x->flags & F_ERROR) && !(x->flags & F_STS_ERROR)) {
        return false;
    }
    if (e == NULL) {
        return true;
    }
    s3_xml_error_release(e);
    e->code = s3_xp_take(x, SL_ERR_CODE);
    if (e->code == NULL) {
        e->code = ls_strdup("");
    }
    e->message = s3_xp_take(x, SL_ERR_MESSAGE);
    e->request_id = s3_xp_take(x, SL_ERR_REQUEST_ID);
    if (e->request_id == NULL) {
        e->request_id = s3_xp_take(x, SL_STS_REQUEST_ID);
    }
    e->host_id = s3_xp_take(x, SL_ERR_HOST_ID);
    e->region = s3_xp_take(x, SL_ERR_REGION);
    e->endpoint = s3_xp_take(x, SL_ERR_ENDPOINT);
    e->server_time = s3_xp_take(x, SL_ERR_SERVER_TIME);
    e->request_time = s3_xp_take(x, SL_ERR_REQUEST_TIME);
    return true;
}

static void s3_no_record(struct s3_xp *x)
{
}

int s3_xml_parse_error(const char *body, size_t len, struct s3_xml_error *e)
{
    struct s3_xp x;
    s3_xp_init(&x, s3_roots_error, s3_no_record, NULL);
    int rc = LS_ERROR;
    if (s3_xp_run(&x, body, len)) {
        rc = s3_fill_error(&x, e) ? LS_OK : LS_DECLINED;
    }
    s3_xp_release(&x);
    return rc;
}

int s3_xml_parse_initiate(const char *body, size_t len, char **upload_id, struct s3_xml_error *e)
{
    *upload_id = NULL;
    struct s3_xp x;
    s3_xp_init(&x, s3_roots_initiate, s3_no_record, NULL);
    int rc = LS_ERROR;
    if (s3_xp_run(&x, body, len)) {
        if (x.flags & F_RESULT) {
            const char *id = x.slot[SL_UPLOAD_ID];
            if (id && id[0]) {
                *upload_id = s3_xp_take(&x, SL_UPLOAD_ID);
                rc = LS_OK;
            }
        } else {
            s3_fill_error(&x, e);
        }
    }
    s3_xp_release(&x);
    return rc;
}

int s3_xml_parse_complete(const char *body, size_t len, char **etag, struct s3_xml_error *e)
{
    if (etag) {
        *etag = NULL;
    }
    struct s3_xp x;
    s3_xp_init(&x, s3_roots_complete, s3_no_record, NULL);
    int rc = LS_ERROR;
    if (s3_xp_run(&x, body, len)) {
        /* anything but <Error> with a completed upload's root is success, anything else is not */
        if (x.flags & F_RESULT) {
            rc = LS_OK;
            if (etag) {
                *etag = s3_xp_take(&x, SL_ETAG);
            }
        } else {
            s3_fill_error(&x, e);
        }
    }
    s3_xp_release(&x);
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

/* End of a <Contents>: an object without a <Key> is skipped. */
static void s3_list_record(struct s3_xp *x)
{
    struct s3_list_result *r = x->out;
    char *key = s3_xp_take(x, SL_OBJ_KEY);
    if (key == NULL) {
        return;
    }
    if (r->n == x->out_cap) {
        x->out_cap = x->out_cap ? x->out_cap * 2 : 16;
        r->objects = ls_realloc(r->objects, x->out_cap * sizeof(*r->objects));
    }
    struct s3_object *o = &r->objects[r->n++];
    o->key = key;
    o->size = s3_xp_int(x, SL_OBJ_SIZE, -1);
    o->etag = s3_xp_take(x, SL_OBJ_ETAG);
    o->last_modified = s3_xp_take(x, SL_OBJ_LAST_MODIFIED);
}

int s3_xml_parse_list(const char *body, size_t len, struct s3_list_result *r, struct s3_xml_error *e)
{
    memset(r, 0, sizeof(*r));
    struct s3_xp x;
    s3_xp_init(&x, s3_roots_list, s3_list_record, r);
    int rc = LS_ERROR;
    if (!s3_xp_run(&x, body, len)) {
        s3_list_result_release(r);   /* objects streamed in before the parse failed */
    } else if (!(x.flags & F_RESULT)) {
        s3_fill_error(&x, e);
    } else {
        r->truncated = s3_xp_bool(&x, SL_TRUNCATED);
        r->next_token = s3_xp_take(&x, SL_NEXT_TOKEN);
        if (r->next_token == NULL) {
            r->next_token = s3_xp_take(&x, SL_NEXT_MARKER);
        }
        rc = LS_OK;
    }
    s3_xp_release(&x);
    return rc;
}

void s3_parts_release(struct s3_parts *p)
{
    for (size_t i = 0; i < p->n; i++) {
        ls_free(p->parts[i].etag);
    }
    ls_free(p->parts);
    memset(p, 0, sizeof(*p));
}

/* End of a <Part>: S3 part numbers are 1..10000; anything else is garbage and skipped. */
static void s3_parts_record(struct s3_xp *x)
{
    struct s3_parts *p = x->out;
    int64_t num = s3_xp_int(x, SL_PART_NUMBER, -1);
    if (num < 1 || num > 10000) {
        return;
    }
    if (p->n == x->out_cap) {
        x->out_cap = x->out_cap ? x->out_cap * 2 : 16;
        p->parts = ls_realloc(p->parts, x->out_cap * sizeof(*p->parts));
    }
    struct s3_part *pt = &p->parts[p->n++];
    pt->number = (int)num;
    pt->etag = s3_xp_take(x, SL_PART_ETAG);
    pt->size = s3_xp_int(x, SL_PART_SIZE, -1);
}

int s3_xml_parse_parts(const char *body, size_t len, struct s3_parts *p, struct s3_xml_error *e)
{
    memset(p, 0, sizeof(*p));
    struct s3_xp x;
    s3_xp_init(&x, s3_roots_parts, s3_parts_record, p);
    int rc = LS_ERROR;
    if (!s3_xp_run(&x, body, len)) {
        s3_parts_release(p);
    } else if (!(x.flags & F_RESULT)) {
        s3_fill_error(&x, e);
    } else {
        p->truncated = s3_xp_bool(&x, SL_TRUNCATED);
        int64_t m = s3_xp_int(&x, SL_NEXT_PART_MARKER, 0);
        p->next_marker = (m >= 0 && m <= 10000) ? (int)m : 0;
        rc = LS_OK;
    }
    s3_xp_release(&x);
    return rc;
}

static int s3_xml_escape(struct ls_buf *out, const char *s)
{
    /* element content: only & < > need escaping (">" for "]]>"); quotes stay literal as
     * S3 and the AWS SDKs write them in <ETag> */
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

int s3_xml_parse_sts_creds(const char *body, size_t len, struct aws_creds *c, struct s3_xml_error *e)
{
    memset(c, 0, sizeof(*c));
    struct s3_xp x;
    s3_xp_init(&x, s3_roots_sts, s3_no_record, NULL);
    int rc = LS_ERROR;
    if (s3_xp_run(&x, body, len)) {
        if (!(x.flags & F_RESULT)) {
            s3_fill_error(&x, e);
        }
        c->key = s3_xp_take(&x, SL_CRED_KEY);
        c->secret = s3_xp_take(&x, SL_CRED_SECRET);
        c->token = s3_xp_take(&x, SL_CRED_TOKEN);
        const char *exp = x.slot[SL_CRED_EXPIRATION];
        c->expiration = exp ? aws_parse_iso8601(exp) : 0;
        if (c->key && c->key[0] && c->secret && c->secret[0] && c->expiration >= 0) {
            rc = LS_OK;
        } else {
            aws_creds_release(c);
        }
    }
    s3_xp_release(&x);
    return rc;
}
