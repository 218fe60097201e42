/*
 * slack.c - fluent-plugin-slack's output (`@type slack`, `buffered_slack`): each chunk's
 * records as Slack messages, through an Incoming Webhook (webhook_url), Slackbot
 * (slackbot_url) or the Web API's chat.postMessage (token).
 *
 * As lib/fluent/plugin/out_slack.rb: every record gives one line, message (default "%s") with
 * its %s replaced by the message_keys' values (default "message"; a missing key is "" with a
 * warning); the lines of a chunk are gathered per channel (channel, with %s from
 * channel_keys; a name without # or @ gets #) into one payload: {"text"} by default,
 * an attachment {"fallback", "text", "color"} with color, or with title (and title_keys) an
 * attachment of fields, one per tag, titled from the tag's first record. username,
 * icon_emoji, icon_url, as_user, mrkdwn (mrkdwn_in text and fields), link_names and parse go
 * in every payload. As the plugin's SetTimeKeyMixin does, the record's "time" (time_key) is
 * the event time as time_format (default %H:%M:%S, local unless utc) and its "tag" (tag_key)
 * the tag, unless include_time_key / include_tag_key are false. The webhook's body is the
 * JSON with &, < and > escaped as Slack asks; the Web API's is a form with the token and
 * attachments as JSON; Slackbot's is the text, the channel in the URL.
 *
 * Where logship differs: the plugin logs any failure but a timeout and drops the chunk; here
 * no answer, 429 and 5xx are retried with the buffer's backoff and other refusals keep the
 * chunk (secondary or backup). A chunk's payloads go in order and its state counts those
 * accepted, so a retry sends only the rest. auto_channels_create (Slack's channels.create
 * is gone) is accepted and does nothing.
 */
#include "plugin.h"
#include "log.h"
#include "http.h"
#include "json.h"
#include "msgpack.h"
#include "timefmt.h"

#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

enum { MODE_WEBHOOK, MODE_SLACKBOT, MODE_WEBAPI };

struct slack {
    char *webhook_url;
    char *slackbot_url;
    char *token;
    char *username;
    char *color;
    int as_user;                  /* -1 unset */
    char *as_user_s;
    char *icon_emoji;
    char *icon_url;
    bool mrkdwn;
    bool link_names;
    char *parse;
    bool auto_channels_create;
    char *https_proxy;
    char *channel;
    struct ls_strv channel_keys;
    char *title;
    struct ls_strv title_keys;
    char *message;
    struct ls_strv message_keys;
    bool verbose_fallback;
    bool include_time_key, include_tag_key;
    char *time_key, *tag_key, *time_format, *timezone;
    bool utc;
    /* derived */
    struct ls_instance *ins;
    char *web_api_url;
    int mode;
    struct ls_timefmt *tf;
};

#define F(f) offsetof(struct slack, f)
#define PUT_LIT(b, s) ls_buf_append((b), (s), sizeof(s) - 1)

static const struct ls_param slack_params[] = {
    { "webhook_url", LS_P_SECRET, NULL, LS_PF_NULLABLE, F(webhook_url),
      "Incoming Webhook URL", NULL, NULL, 0, 0 },
    { "slackbot_url", LS_P_SECRET, NULL, LS_PF_NULLABLE, F(slackbot_url),
      "Slackbot URL (needs channel)", NULL, NULL, 0, 0 },
    { "token", LS_P_SECRET, NULL, LS_PF_NULLABLE, F(token),
      "Web API token: chat.postMessage (needs channel)", NULL, NULL, 0, 0 },
    { "web_api_url", LS_P_STR, "https://slack.com/api/chat.postMessage", 0, F(web_api_url),
      "token: the chat.postMessage URL (logship's; the plugin's is fixed)", NULL, NULL, 0, 0 },
    { "channel", LS_P_STR, NULL, LS_PF_NULLABLE, F(channel),
      "channel (# added unless it starts with # or @); %s from channel_keys", NULL, NULL, 0,
      0 },
    { "channel_keys", LS_P_ARRAY, NULL, 0, F(channel_keys), "fields for channel's %s", NULL,
      NULL, 0, 0 },
    { "username", LS_P_STR, NULL, LS_PF_NULLABLE, F(username), "bot name", NULL, NULL, 0, 0 },
    { "color", LS_P_STR, NULL, LS_PF_NULLABLE, F(color),
      "send an attachment of this color (good, warning, danger, #hex)", NULL, NULL, 0, 0 },
    { "as_user", LS_P_STR, NULL, LS_PF_NULLABLE, F(as_user_s),
      "Web API: post as the token's user", NULL, NULL, 0, 0 },
    { "icon_emoji", LS_P_STR, NULL, LS_PF_NULLABLE, F(icon_emoji), "icon emoji", NULL, NULL, 0,
      0 },
    { "icon_url", LS_P_STR, NULL, LS_PF_NULLABLE, F(icon_url), "icon image URL", NULL, NULL, 0,
      0 },
    { "mrkdwn", LS_P_BOOL, "true", 0, F(mrkdwn), "Slack formatting in text and fields", NULL,
      NULL, 0, 0 },
    { "link_names", LS_P_BOOL, "true", 0, F(link_names), "link channel and user names", NULL,
      NULL, 0, 0 },
    { "parse", LS_P_STR, NULL, LS_PF_NULLABLE, F(parse), "none or full", NULL, NULL, 0, 0 },
    { "auto_channels_create", LS_P_BOOL, "false", 0, F(auto_channels_create),
      "accepted (Slack's channels.create is gone)", NULL, NULL, 0, 0 },
    { "https_proxy", LS_P_STR, NULL, LS_PF_NULLABLE, F(https_proxy), "proxy URL", NULL, NULL,
      0, 0 },
    { "title", LS_P_STR, NULL, LS_PF_NULLABLE, F(title),
      "send fields, one per tag, titled so; %s from title_keys", NULL, NULL, 0, 0 },
    { "title_keys", LS_P_ARRAY, NULL, 0, F(title_keys), "fields for title's %s", NULL, NULL, 0,
      0 },
    { "message", LS_P_STR, "%s", 0, F(message), "each record's line; %s from message_keys",
      NULL, NULL, 0, 0 },
    { "message_keys", LS_P_ARRAY, "message", 0, F(message_keys), "fields for message's %s",
      NULL, NULL, 0, 0 },
    { "verbose_fallback", LS_P_BOOL, "false", 0, F(verbose_fallback),
      "title mode: the messages in the notification text too", NULL, NULL, 0, 0 },
    { "include_time_key", LS_P_BOOL, "true", 0, F(include_time_key),
      "time_key is the event time (time_format)", NULL, NULL, 0, 0 },
    { "include_tag_key", LS_P_BOOL, "true", 0, F(include_tag_key), "tag_key is the tag", NULL,
      NULL, 0, 0 },
    { "time_key", LS_P_STR, "time", 0, F(time_key), "the time's field", NULL, NULL, 0, 0 },
    { "tag_key", LS_P_STR, "tag", 0, F(tag_key), "the tag's field", NULL, NULL, 0, 0 },
    { "time_format", LS_P_STR, "%H:%M:%S", 0, F(time_format), "the time's format", NULL, NULL,
      0, 0 },
    { "utc", LS_P_BOOL, "false", 0, F(utc), "the time in UTC (default local)", NULL, NULL, 0,
      0 },
    { "localtime", LS_P_BOOL, NULL, LS_PF_NO_STORE, 0, "the time local (the default)", NULL,
      NULL, 0, 0 },
    { "timezone", LS_P_STR, NULL, LS_PF_NULLABLE, F(timezone), "the time's zone", NULL, NULL,
      0, 0 },
    LS_PARAM_END
};

/* Ruby's format % values for a format of %s (and %%) only; false if the counts differ */
static bool check_format(const char *fmt, size_t nvalues)
{
    size_t n = 0;

    for (const char *p = fmt; *p; p++) {
        if (p[0] == '%' && p[1] == '%') {
            p++;
        } else if (p[0] == '%') {
            n++;
        }
    }
    return n == nvalues;
}

static void apply_format(struct ls_buf *b, const char *fmt, const char *const *v,
                         const size_t *vlen)
{
    size_t k = 0;

    for (const char *p = fmt; *p; p++) {
        if (p[0] == '%' && p[1] == '%') {
            ls_buf_putc(b, '%');
            p++;
        } else if (p[0] == '%' && p[1] == 's') {
            ls_buf_append(b, v[k], vlen[k]);
            k++;
            p++;
        } else {
            ls_buf_putc(b, *p);
        }
    }
}

static int slack_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                      size_t errlen)
{
    struct slack *o = ins->ctx;
    char msg[200];

    o->ins = ins;
    o->as_user = -1;
    if (o->as_user_s) {
        bool b;
        if (ls_parse_bool(o->as_user_s, &b) != LS_OK) {
            ls_conf_param_error(sec, "as_user", err, errlen, "as_user '%s' is not a bool",
                                o->as_user_s);
            return LS_ERROR;
        }
        o->as_user = b;
    }
    if (o->channel && o->channel[0] != '#' && o->channel[0] != '@') {
        char *c = ls_asprintf("#%s", o->channel);
        ls_free(o->channel);
        o->channel = c;
    }
    if (o->webhook_url) {
        if (!o->webhook_url[0]) {
            snprintf(err, errlen, "%s:%d: `webhook_url` is an empty string", sec->file,
                     sec->line);
            return LS_ERROR;
        }
        o->mode = MODE_WEBHOOK;
    } else if (o->slackbot_url) {
        if (!o->slackbot_url[0] || o->channel == NULL) {
            snprintf(err, errlen, "%s:%d: %s", sec->file, sec->line, !o->slackbot_url[0]
                     ? "`slackbot_url` is an empty string"
                     : "`channel` parameter required for Slackbot Remote Control");
            return LS_ERROR;
        }
        o->mode = MODE_SLACKBOT;
    } else if (o->token) {
        if (!o->token[0] || o->channel == NULL) {
            snprintf(err, errlen, "%s:%d: %s", sec->file, sec->line, !o->token[0]
                     ? "`token` is an empty string"
                     : "`channel` parameter required for Slack WebApi");
            return LS_ERROR;
        }
        o->mode = MODE_WEBAPI;
        if (strncmp(o->web_api_url, "http://", 7) != 0 &&
            strncmp(o->web_api_url, "https://", 8) != 0) {
            ls_conf_param_error(sec, "web_api_url", err, errlen, "web_api_url '%s' is not an "
                                "http(s) URL", o->web_api_url);
            return LS_ERROR;
        }
    } else {
        snprintf(err, errlen, "%s:%d: One of `webhook_url` or `slackbot_url`, or `token` is "
                 "required", sec->file, sec->line);
        return LS_ERROR;
    }
    if (!check_format(o->message, o->message_keys.n)) {
        snprintf(err, errlen, "%s:%d: string specifier '%%s' for `message`  and `message_keys` "
                 "specification mismatch", sec->file, sec->line);
        return LS_ERROR;
    }
    if (o->title && o->title_keys.n && !check_format(o->title, o->title_keys.n)) {
        snprintf(err, errlen, "%s:%d: string specifier '%%s' for `title` and `title_keys` "
                 "specification mismatch", sec->file, sec->line);
        return LS_ERROR;
    }
    if (o->channel && o->channel_keys.n && !check_format(o->channel, o->channel_keys.n)) {
        snprintf(err, errlen, "%s:%d: string specifier '%%s' for `channel` and `channel_keys` "
                 "specification mismatch", sec->file, sec->line);
        return LS_ERROR;
    }
    if (o->icon_emoji && o->icon_url) {
        snprintf(err, errlen, "%s:%d: either of `icon_emoji` or `icon_url` can be specified",
                 sec->file, sec->line);
        return LS_ERROR;
    }
    if (o->as_user == 1 && (o->icon_emoji || o->icon_url || o->username)) {
        snprintf(err, errlen, "%s:%d: `username`, `icon_emoji` and `icon_url` cannot be "
                 "specified when `as_user` is set to true", sec->file, sec->line);
        return LS_ERROR;
    }
    if (o->parse && strcmp(o->parse, "none") != 0 && strcmp(o->parse, "full") != 0) {
        ls_conf_param_error(sec, "parse", err, errlen, "`parse` must be either of `none` or "
                            "`full`");
        return LS_ERROR;
    }
    if (o->auto_channels_create && !o->token) {
        ls_conf_param_error(sec, "auto_channels_create", err, errlen, "`token` parameter is "
                            "required to use `auto_channels_create`");
        return LS_ERROR;
    }
    o->tf = ls_timefmt_create(o->time_format, o->utc ? "UTC" : o->timezone, msg, sizeof(msg));
    if (o->tf == NULL) {
        ls_conf_param_error(sec, "time_format", err, errlen, "%s", msg);
        return LS_ERROR;
    }
    return LS_OK;
}

/* ---- one chunk ---- */

struct group {                  /* one channel's payload */
    char *channel;              /* NULL: no channel */
    struct ls_buf text;         /* plain and color modes */
    char **tags;                /* title mode: per tag, its title and lines */
    struct ls_buf *titles, *values;
    size_t ntags;
};

struct slack_job {
    struct slack *o;
    struct ls_chunk *c;
    struct group *g;
    size_t ng;
    struct ls_buf *bodies;      /* one per group, encoded for the mode */
    size_t next;
    uint64_t sent;
    int rc;
    char err[300];
    char warn[300];
};

/* record.fetch(key).to_s, the mixin's time and tag first */
static void fetch(struct slack_job *j, const struct ls_record *rec, const char *tag,
                  const char *key, struct ls_buf *out, size_t *start, size_t *len)
{
    struct slack *o = j->o;
    const struct ls_field *f;

    *start = out->len;
    if (o->include_tag_key && strcmp(key, o->tag_key) == 0 && tag[0]) {
        ls_buf_append(out, tag, strlen(tag));
    } else if (o->include_time_key && strcmp(key, o->time_key) == 0) {
        ls_timefmt_format(o->tf, &rec->time, out);
    } else if ((f = ls_record_get(rec, key, strlen(key))) != NULL) {
        if (f->v.type == LS_V_STR) {
            ls_buf_append(out, f->v.u.s.p, f->v.u.s.len);
        } else if (f->v.type != LS_V_NULL) {
            ls_ruby_put_value(out, &f->v, false);
        }
    } else if (!j->warn[0]) {
        snprintf(j->warn, sizeof(j->warn), "out_slack: the specified key '%s' not found in "
                 "record", key);
    }
    *len = out->len - *start;
}

/* fmt % the keys' values, appended to out */
static void build_text(struct slack_job *j, const struct ls_record *rec, const char *tag,
                       const char *fmt, const struct ls_strv *keys, struct ls_buf *out)
{
    struct ls_buf vals;
    const char *vp[64];
    size_t st[64], vl[64], n = keys->n < 64 ? keys->n : 64;

    ls_buf_init(&vals, 0);
    for (size_t i = 0; i < n; i++) {
        fetch(j, rec, tag, keys->v[i], &vals, &st[i], &vl[i]);
    }
    for (size_t i = 0; i < n; i++) {
        vp[i] = vals.p ? vals.p + st[i] : "";
    }
    apply_format(out, fmt, vp, vl);
    ls_buf_release(&vals);
}

static struct group *group_for(struct slack_job *j, const char *channel)
{
    for (size_t i = 0; i < j->ng; i++) {
        if ((channel == NULL && j->g[i].channel == NULL) ||
            (channel && j->g[i].channel && strcmp(channel, j->g[i].channel) == 0)) {
            return &j->g[i];
        }
    }
    j->g = ls_realloc(j->g, (j->ng + 1) * sizeof(*j->g));
    memset(&j->g[j->ng], 0, sizeof(*j->g));
    j->g[j->ng].channel = channel ? ls_strdup(channel) : NULL;
    ls_buf_init(&j->g[j->ng].text, 0);
    return &j->g[j->ng++];
}

static void one_record(struct slack_job *j, const msgpack_object *e, const char *ctag,
                       struct ls_arena *a)
{
    struct slack *o = j->o;
    struct ls_record rec;
    struct ls_buf ch, tagb;
    struct group *g;
    const char *tag = ctag;
    const struct ls_field *tf;

    if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size < 2) {
        return;
    }
    ls_record_init(&rec, a);
    if (!ls_msgpack_event_time(&e->via.array.ptr[0], &rec.time) ||
        ls_msgpack_map_to_record(&e->via.array.ptr[1], &rec) != LS_OK) {
        ls_record_release(&rec);
        return;
    }
    ls_buf_init(&tagb, 0);
    if (!tag[0] && (tf = ls_record_get(&rec, o->tag_key, strlen(o->tag_key))) != NULL &&
        tf->v.type == LS_V_STR) {
        ls_buf_append(&tagb, tf->v.u.s.p, tf->v.u.s.len);
        tag = ls_buf_cstr(&tagb);     /* an injected tag where tag is not a chunk key */
    }
    ls_buf_init(&ch, 0);
    if (o->channel && o->channel_keys.n) {
        build_text(j, &rec, tag, o->channel, &o->channel_keys, &ch);
    } else if (o->channel) {
        ls_buf_append(&ch, o->channel, strlen(o->channel));
    }
    g = group_for(j, o->channel ? ls_buf_cstr(&ch) : NULL);
    if (o->title) {
        size_t i;
        for (i = 0; i < g->ntags && strcmp(g->tags[i], tag) != 0; i++) {
        }
        if (i == g->ntags) {
            g->tags = ls_realloc(g->tags, (g->ntags + 1) * sizeof(*g->tags));
            g->titles = ls_realloc(g->titles, (g->ntags + 1) * sizeof(*g->titles));
            g->values = ls_realloc(g->values, (g->ntags + 1) * sizeof(*g->values));
            g->tags[i] = ls_strdup(tag);
            ls_buf_init(&g->titles[i], 0);
            ls_buf_init(&g->values[i], 0);
            if (o->title_keys.n) {
                build_text(j, &rec, tag, o->title, &o->title_keys, &g->titles[i]);
            } else {
                ls_buf_append(&g->titles[i], o->title, strlen(o->title));
            }
            g->ntags++;
        }
        build_text(j, &rec, tag, o->message, &o->message_keys, &g->values[i]);
        ls_buf_putc(&g->values[i], '\n');
    } else {
        build_text(j, &rec, tag, o->message, &o->message_keys, &g->text);
        ls_buf_putc(&g->text, '\n');
    }
    ls_buf_release(&ch);
    ls_buf_release(&tagb);
    ls_record_release(&rec);
}

static void put_kv(struct ls_buf *b, bool *first, const char *k, const char *v, size_t vlen)
{
    if (!*first) {
        ls_buf_putc(b, ',');
    }
    *first = false;
    ls_json_put_str(b, k, strlen(k));
    ls_buf_putc(b, ':');
    ls_json_put_str(b, v, vlen);
}

/* the attachments array of g (color or title mode) as JSON */
static void put_attachments(struct slack_job *j, const struct group *g, struct ls_buf *b)
{
    struct slack *o = j->o;
    bool first = true;

    PUT_LIT(b, "[{");
    if (o->title) {
        struct ls_buf fb;
        ls_buf_init(&fb, 0);
        for (size_t i = 0; i < g->ntags; i++) {
            if (i) {
                ls_buf_putc(&fb, ' ');
            }
            ls_buf_append(&fb, g->titles[i].p, g->titles[i].len);
            if (o->verbose_fallback) {
                ls_buf_putc(&fb, ' ');
                ls_buf_append(&fb, g->values[i].p, g->values[i].len);
            }
        }
        put_kv(b, &first, "fallback", fb.p ? fb.p : "", fb.len);
        ls_buf_release(&fb);
        PUT_LIT(b, ",\"fields\":[");
        for (size_t i = 0; i < g->ntags; i++) {
            bool f2 = true;
            ls_buf_append(b, i ? ",{" : "{", i ? 2 : 1);
            put_kv(b, &f2, "title", g->titles[i].p ? g->titles[i].p : "", g->titles[i].len);
            put_kv(b, &f2, "value", g->values[i].p ? g->values[i].p : "", g->values[i].len);
            ls_buf_putc(b, '}');
        }
        ls_buf_putc(b, ']');
    } else {
        put_kv(b, &first, "fallback", g->text.p ? g->text.p : "", g->text.len);
        put_kv(b, &first, "text", g->text.p ? g->text.p : "", g->text.len);
    }
    if (o->color) {
        put_kv(b, &first, "color", o->color, strlen(o->color));
    }
    if (o->mrkdwn) {
        PUT_LIT(b, ",\"mrkdwn_in\":[\"text\",\"fields\"]");
    }
    PUT_LIT(b, "}]");
}

/* the payload of g as the plugin's Hash, in its key order, as JSON */
static void put_payload_json(struct slack_job *j, const struct group *g, struct ls_buf *b)
{
    struct slack *o = j->o;
    bool first = true;

    ls_buf_putc(b, '{');
    if (o->title || o->color) {
        PUT_LIT(b, "\"attachments\":");
        put_attachments(j, g, b);
        first = false;
    } else {
        put_kv(b, &first, "text", g->text.p ? g->text.p : "", g->text.len);
    }
    if (g->channel) {
        put_kv(b, &first, "channel", g->channel, strlen(g->channel));
    }
    if (o->as_user >= 0) {
        if (o->as_user) {
            PUT_LIT(b, ",\"as_user\":true");
        } else {
            PUT_LIT(b, ",\"as_user\":false");
        }
    }
    if (o->username) {
        put_kv(b, &first, "username", o->username, strlen(o->username));
    }
    if (o->icon_emoji) {
        put_kv(b, &first, "icon_emoji", o->icon_emoji, strlen(o->icon_emoji));
    }
    if (o->icon_url) {
        put_kv(b, &first, "icon_url", o->icon_url, strlen(o->icon_url));
    }
    if (o->mrkdwn) {
        PUT_LIT(b, ",\"mrkdwn\":true");
    }
    if (o->link_names) {
        PUT_LIT(b, ",\"link_names\":true");
    }
    if (o->parse) {
        put_kv(b, &first, "parse", o->parse, strlen(o->parse));
    }
    ls_buf_putc(b, '}');
}

/* URI.encode_www_form_component: letters, digits and *-._ stay, a space is + */
static void put_urlenc(struct ls_buf *b, const char *v, size_t vlen)
{
    static const char hex[] = "0123456789ABCDEF";

    for (size_t i = 0; i < vlen; i++) {
        unsigned char ch = (unsigned char)v[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '*' || ch == '-' || ch == '.' || ch == '_') {
            ls_buf_putc(b, (char)ch);
        } else if (ch == ' ') {
            ls_buf_putc(b, '+');
        } else {
            ls_buf_putc(b, '%');
            ls_buf_putc(b, hex[ch >> 4]);
            ls_buf_putc(b, hex[ch & 15]);
        }
    }
}

static void form_kv(struct ls_buf *b, const char *k, const char *v, size_t vlen)
{
    if (b->len) {
        ls_buf_putc(b, '&');
    }
    ls_buf_append(b, k, strlen(k));
    ls_buf_putc(b, '=');
    put_urlenc(b, v, vlen);
}

/* The body of g's request in the mode's encoding */
static void encode(struct slack_job *j, const struct group *g, struct ls_buf *out)
{
    struct slack *o = j->o;
    struct ls_buf js;

    ls_buf_init(&js, 0);
    if (o->mode == MODE_WEBHOOK) {
        /* the plugin's gsub of &, < and > over the whole JSON */
        put_payload_json(j, g, &js);
        for (size_t i = 0; i < js.len; i++) {
            char ch = js.p[i];
            if (ch == '&') {
                ls_buf_append(out, "&amp;", 5);
            } else if (ch == '<') {
                ls_buf_append(out, "&lt;", 4);
            } else if (ch == '>') {
                ls_buf_append(out, "&gt;", 4);
            } else {
                ls_buf_putc(out, ch);
            }
        }
    } else if (o->mode == MODE_SLACKBOT) {
        /* the text, or the first attachment's text or first field's value */
        if (o->title && g->ntags) {
            ls_buf_append(out, g->values[0].p, g->values[0].len);
        } else {
            ls_buf_append(out, g->text.p ? g->text.p : "", g->text.len);
        }
    } else {
        /* URI.encode_www_form of the payload, attachments as JSON */
        if (o->title || o->color) {
            put_attachments(j, g, &js);
            form_kv(out, "attachments", js.p, js.len);
        } else {
            form_kv(out, "text", g->text.p ? g->text.p : "", g->text.len);
        }
        if (g->channel) {
            form_kv(out, "channel", g->channel, strlen(g->channel));
        }
        if (o->as_user >= 0) {
            form_kv(out, "as_user", o->as_user ? "true" : "false", o->as_user ? 4 : 5);
        }
        if (o->username) {
            form_kv(out, "username", o->username, strlen(o->username));
        }
        if (o->icon_emoji) {
            form_kv(out, "icon_emoji", o->icon_emoji, strlen(o->icon_emoji));
        }
        if (o->icon_url) {
            form_kv(out, "icon_url", o->icon_url, strlen(o->icon_url));
        }
        if (o->mrkdwn) {
            form_kv(out, "mrkdwn", "true", 4);
        }
        if (o->link_names) {
            form_kv(out, "link_names", "true", 4);
        }
        if (o->parse) {
            form_kv(out, "parse", o->parse, strlen(o->parse));
        }
        form_kv(out, "token", o->token, strlen(o->token));
    }
    ls_buf_release(&js);
}

static void slack_build(void *arg)
{
    struct slack_job *j = arg;
    struct ls_chunk_entries *en = ls_chunk_entries_open(j->c);
    const char *tag = ls_chunk_info(j->c)->tag;
    const msgpack_object *e;
    struct ls_arena a;
    bool failed;

    j->rc = LS_ERROR;
    if (en == NULL) {
        snprintf(j->err, sizeof(j->err), "cannot read chunk %s", ls_chunk_info(j->c)->id);
        return;
    }
    ls_arena_init(&a, 4096);
    while ((e = ls_chunk_entries_next(en)) != NULL) {
        ls_arena_reset(&a);
        one_record(j, e, tag ? tag : "", &a);
    }
    failed = ls_chunk_entries_failed(en);
    ls_chunk_entries_close(en);
    ls_arena_release(&a);
    if (failed) {
        snprintf(j->err, sizeof(j->err), "cannot read chunk %s", ls_chunk_info(j->c)->id);
        return;
    }
    j->bodies = ls_calloc(j->ng + 1, sizeof(*j->bodies));
    for (size_t i = 0; i < j->ng; i++) {
        ls_buf_init(&j->bodies[i], 0);
        encode(j, &j->g[i], &j->bodies[i]);
    }
    j->rc = LS_OK;
}

static void slack_job_free(struct slack_job *j)
{
    for (size_t i = 0; i < j->ng; i++) {
        struct group *g = &j->g[i];
        ls_free(g->channel);
        ls_buf_release(&g->text);
        for (size_t k = 0; k < g->ntags; k++) {
            ls_free(g->tags[k]);
            ls_buf_release(&g->titles[k]);
            ls_buf_release(&g->values[k]);
        }
        ls_free(g->tags);
        ls_free(g->titles);
        ls_free(g->values);
        if (j->bodies) {
            ls_buf_release(&j->bodies[i]);
        }
    }
    ls_free(j->g);
    ls_free(j->bodies);
    ls_free(j);
}

static void slack_send(struct slack_job *j);

static void slack_sent(struct ls_http_resp *resp, void *arg)
{
    struct slack_job *j = arg;
    struct slack *o = j->o;
    const char *body = ls_buf_cstr(&resp->body);
    char msg[400], state[64];
    bool ok;

    if (o->mode == MODE_WEBAPI) {
        ok = resp->status == 200 && strstr(body, "\"ok\":true") != NULL;
    } else {
        ok = resp->status == 200 && strcmp(body, "ok") == 0;
    }
    if (!ok) {
        int rc = ls_http_refusal(resp, "out_slack", msg, sizeof(msg));
        ls_output_write_done(o->ins, j->c, resp->status == 200 ? LS_DECLINED : rc, msg);
        slack_job_free(j);
        return;
    }
    j->sent += j->bodies[j->next].len;
    j->next++;
    if (j->next < j->ng) {
        /* the payloads accepted so far are not sent again by a retry */
        snprintf(state, sizeof(state), "slack-payloads %zu", j->next);
        if (ls_chunk_set_state(j->c, state) != LS_OK) {
            ls_output_write_done(o->ins, j->c, LS_ERROR, "cannot store the chunk's state");
            slack_job_free(j);
            return;
        }
    }
    slack_send(j);
}

static void slack_send(struct slack_job *j)
{
    struct slack *o = j->o;
    struct ls_http_req req;
    struct ls_buf h;
    char *url = NULL;

    if (j->next >= j->ng) {
        o->ins->metrics.write_bytes += j->sent;
        ls_output_write_done(o->ins, j->c, LS_OK, NULL);
        slack_job_free(j);
        return;
    }
    ls_buf_init(&h, 0);
    ls_http_hdr_add(&h, "Accept: application/json; charset=utf-8");
    ls_http_hdr_add(&h, "User-Agent: fluent-plugin-slack");
    ls_http_hdr_add(&h, "Expect:");
    memset(&req, 0, sizeof(req));
    if (o->mode == MODE_WEBHOOK) {
        ls_http_hdr_add(&h, "Content-Type: application/json");
        req.url = o->webhook_url;
    } else if (o->mode == MODE_SLACKBOT) {
        struct ls_buf u;
        const char *ch = j->g[j->next].channel ? j->g[j->next].channel : "";
        ls_buf_init(&u, 0);
        ls_buf_append(&u, o->slackbot_url, strlen(o->slackbot_url));
        ls_buf_append(&u, strchr(o->slackbot_url, '?') ? "&channel=" : "?channel=", 9);
        put_urlenc(&u, ch, strlen(ch));
        url = ls_strdup(ls_buf_cstr(&u));
        ls_buf_release(&u);
        ls_http_hdr_add(&h, "Content-Type: text/plain; charset=utf-8");
        req.url = url;
    } else {
        ls_http_hdr_add(&h, "Content-Type: application/x-www-form-urlencoded");
        req.url = o->web_api_url;
    }
    req.method = "POST";
    req.headers = &h;
    req.body = j->bodies[j->next].p ? j->bodies[j->next].p : "";
    req.body_len = j->bodies[j->next].len;
    req.connect_timeout = 60;
    req.low_speed_time = 60;
    req.verify_peer = true;
    req.proxy = o->https_proxy;
    req.max_response = 64 * 1024;
    ls_output_write_sending(o->ins, j->c);
    if (ls_http_submit(o->ins->engine, &req, slack_sent, j) != LS_OK) {
        ls_output_write_done(o->ins, j->c, LS_ERROR, "cannot start the request");
        slack_job_free(j);
    }
    ls_buf_release(&h);
    ls_free(url);
}

static void slack_built(void *arg)
{
    struct slack_job *j = arg;

    if (j->rc != LS_OK) {
        ls_output_write_done(j->o->ins, j->c, LS_ERROR, j->err);
        slack_job_free(j);
        return;
    }
    if (j->warn[0]) {
        ls_plg_warn(j->o->ins, "%s", j->warn);
    }
    slack_send(j);
}

static int slack_write(struct ls_instance *ins, struct ls_chunk *c)
{
    struct slack *o = ins->ctx;
    struct slack_job *j = ls_calloc(1, sizeof(*j));
    const char *st = ls_chunk_state(c);

    j->o = o;
    j->c = c;
    if (st && strncmp(st, "slack-payloads ", 15) == 0) {
        j->next = (size_t)strtoull(st + 15, NULL, 10);
    }
    if (ls_work_submit(ins->engine, slack_build, slack_built, j) != LS_OK) {
        slack_job_free(j);
        return LS_ERROR;
    }
    return LS_AGAIN;
}

static void slack_destroy(struct ls_instance *ins)
{
    struct slack *o = ins->ctx;

    ls_timefmt_destroy(o->tf);
}

const struct ls_plugin ls_plugin_out_slack = {
    .name = "slack",
    .aliases = "buffered_slack",
    .kind = LS_PLUGIN_OUTPUT,
    .description = "post records to Slack: Incoming Webhook, Slackbot or Web API "
                   "(fluent-plugin-slack)",
    .params = slack_params,
    .ctx_size = sizeof(struct slack),
    .init = slack_init,
    .destroy = slack_destroy,
    .output_flags = LS_OUT_BUFFERED,
    .default_formatter = "msgpack",
    .formatter_for = ls_msgpack_formatter_for,
    .default_chunk_keys = "tag",
    .write = slack_write,
};
