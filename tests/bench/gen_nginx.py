#!/usr/bin/env python3
"""Deterministic, realistic nginx "combined" access logs for the benchmark.

    gen_nginx.py --size 500M --seed 1 -o access.log

The same (size, seed) always gives the same bytes (only random.Random with
a seed is used; no hash(), no clock). Lines look like a busy site's:
IPv4 and IPv6 clients drawn from pools with a few heavy hitters, a mostly
"-" remote user, GET-heavy methods, paths from static assets to API calls
with percent-encoded query strings, a status mix where 2xx/3xx dominate,
body sizes that follow the status, referers (none, same site, search
engines), and user agents including bots and ones with quotes and
backslashes, which nginx writes escaped as \\x22 and \\x5C (with --escaped-quotes P, P% of
the lines carry a user agent with \\" instead, as `log_format ... escape=json` writes it, which
fluentd's nginx expression rejects: the benchmark counts them). Times are
monotonic (nginx logs when a request ends) and spread over --hours hours
from a fixed start, so an hourly <buffer time> sees several slices.
"""
import argparse, os, random, sys, time

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

AGENTS = [
    (30, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36"),
    (12, "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3 Safari/605.1.15"),
    (10, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3 Mobile/15E148 Safari/604.1"),
    (8, "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.6261.64 Mobile Safari/537.36"),
    (7, "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0"),
    (5, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.0.0 Safari/537.36 Edg/121.0.2277.128"),
    (4, "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"),
    (2, "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"),
    (2, "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.0; +https://openai.com/gptbot)"),
    (3, "curl/7.88.1"),
    (3, "python-requests/2.31.0"),
    (2, "Go-http-client/1.1"),
    (2, "kube-probe/1.29"),
    (1, "Wget/1.21.3"),
    (1, "-"),
    (1, "Apache-HttpClient/4.5.14 (Java/17.0.10)"),
    (1, "okhttp/4.12.0"),
    # nginx escapes '"' and '\' in $http_user_agent as \x22 and \x5C
    (1, "Mozilla/5.0 (compatible; \\x22SuperBot\\x22 v1.2; +http://bot.example.net/)"),
    (1, "Mozilla/5.0 \\x22(Windows NT 6.1)\\x22 sqlmap/1.7.2#stable"),
    (1, "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; C:\\x5CProgram Files\\x5Cx)"),
]

STATIC = ["/static/js/app.{h}.js", "/static/css/main.{h}.css", "/static/js/vendor.{h}.js",
          "/images/products/{n}.jpg", "/images/thumbs/{n}_320x240.webp", "/fonts/inter-var.woff2",
          "/favicon.ico", "/robots.txt", "/apple-touch-icon.png"]
PAGES = ["/", "/index.html", "/products/{n}", "/products/{n}/reviews", "/category/{w}",
         "/blog/{y}/{w}-{w}-{w}", "/cart", "/checkout", "/account/orders", "/about", "/contact",
         "/help/{w}", "/docs/{w}/{w}.html"]
APIS = ["/api/v1/users/{n}", "/api/v1/products/{n}", "/api/v1/orders/{n}/items",
        "/api/v2/search", "/api/v1/cart", "/api/v1/session", "/graphql", "/healthz", "/metrics"]
WORDS = ["shoes", "red", "linux", "kernel", "coffee", "organic", "garden", "tools", "summer", "sale",
         "laptop", "bag", "winter", "jacket", "kids", "books", "music", "vinyl", "camera", "lens",
         "caf\\xC3\\xA9", "na\\xC3\\xAFve", "gift", "card", "deals", "new", "best", "top", "review"]
QKEYS = ["q", "page", "sort", "utm_source", "utm_medium", "utm_campaign", "ref", "id", "lang",
         "limit", "offset", "fbclid", "gclid", "session", "filter[color]", "filter[size]"]
REFERERS = ["https://www.example.com/", "https://www.example.com/products/{n}",
            "https://www.example.com/category/{w}", "https://www.google.com/",
            "https://www.google.com/search?q={w}+{w}", "https://duckduckgo.com/",
            "https://www.bing.com/search?q={w}&form=QBLH", "https://t.co/{h}",
            "android-app://com.google.android.gm/", "https://m.facebook.com/"]
STATUS = [(760, 200), (90, 304), (30, 301), (25, 302), (40, 404), (8, 403), (6, 500), (4, 502),
          (10, 499), (8, 206), (10, 201), (9, 204)]
METHODS = [(850, "GET"), (100, "POST"), (20, "HEAD"), (15, "PUT"), (10, "DELETE"), (5, "OPTIONS")]
PROTOS = [(70, "HTTP/1.1"), (27, "HTTP/2.0"), (3, "HTTP/1.0")]
USERS = ["alice", "bob", "carol", "api-client", "deploy"]


def cum(weighted):
    c, acc = [], 0
    for w, _ in weighted:
        acc += w
        c.append(acc)
    return c, [v for _, v in weighted]


class Gen:
    def __init__(self, seed, start, hours):
        self.r = random.Random(seed)
        r = self.r
        self.start = start
        self.hours = hours
        self.v4 = ["%d.%d.%d.%d" % (r.choice([10, 34, 52, 66, 81, 93, 104, 151, 172, 185, 203, 213]),
                                    r.randrange(256), r.randrange(256), r.randrange(1, 255))
                   for _ in range(4000)]
        self.v6 = ["2001:db8:%x:%x::%x" % (r.randrange(65536), r.randrange(65536), r.randrange(1, 65536))
                   for _ in range(800)] + \
                  ["2a02:%x:%x:%x:%x:%x:%x:%x" % tuple(r.randrange(65536) for _ in range(7)) for _ in range(400)]
        self.hot = self.v4[:20]
        self.agent_c, self.agent_v = cum(AGENTS)
        self.status_c, self.status_v = cum(STATUS)
        self.meth_c, self.meth_v = cum(METHODS)
        self.proto_c, self.proto_v = cum(PROTOS)
        self.tcache = (None, None)

    def fill(self, tmpl):
        r = self.r
        out = []
        i = 0
        while True:
            j = tmpl.find("{", i)
            if j < 0:
                out.append(tmpl[i:])
                return "".join(out)
            out.append(tmpl[i:j])
            k = tmpl[j + 1]
            if k == "n":
                out.append(str(r.randrange(1, 200000)))
            elif k == "h":
                out.append("%08x" % r.getrandbits(32))
            elif k == "w":
                out.append(r.choice(WORDS))
            elif k == "y":
                out.append(str(r.randrange(2015, 2025)))
            i = j + 3

    def query(self):
        r = self.r
        parts = []
        for _ in range(r.choice((1, 1, 2, 2, 3, 5))):
            k = r.choice(QKEYS)
            x = r.random()
            if x < 0.4:
                v = str(r.randrange(1, 100))
            elif x < 0.8:
                v = "%s+%s" % (r.choice(WORDS), r.choice(WORDS))
            else:
                v = "%%22%s%%20%s%%22" % (r.choice(WORDS), r.choice(WORDS))
            parts.append(k + "=" + v)
        return "?" + "&".join(parts)

    def path(self):
        r = self.r
        x = r.random()
        if x < 0.45:
            p = self.fill(r.choice(STATIC))
            if r.random() < 0.1:
                p += "?v=%d" % r.randrange(1000)
        elif x < 0.75:
            p = self.fill(r.choice(PAGES))
            if r.random() < 0.35:
                p += self.query()
        else:
            p = self.fill(r.choice(APIS))
            if r.random() < 0.5:
                p += self.query()
        return p

    def timestr(self, t):
        if self.tcache[0] == t:
            return self.tcache[1]
        tm = time.gmtime(t)
        s = "%02d/%s/%d:%02d:%02d:%02d +0000" % (tm.tm_mday, MONTHS[tm.tm_mon - 1], tm.tm_year,
                                                  tm.tm_hour, tm.tm_min, tm.tm_sec)
        self.tcache = (t, s)
        return s

    def line(self, t):
        r = self.r
        x = r.random()
        if x < 0.3:
            ip = r.choice(self.hot)
        elif x < 0.85:
            ip = r.choice(self.v4)
        else:
            ip = r.choice(self.v6)
        user = "-" if r.random() < 0.97 else r.choice(USERS)
        method = r.choices(self.meth_v, cum_weights=self.meth_c)[0]
        status = r.choices(self.status_v, cum_weights=self.status_c)[0]
        if status in (304, 204):
            size = 0
        elif status >= 400:
            size = r.randrange(150, 600)
        elif status in (301, 302):
            size = r.randrange(150, 180)
        else:
            size = int(r.lognormvariate(8.5, 1.6))
        ref = "-" if r.random() < 0.4 else self.fill(r.choice(REFERERS))
        agent = r.choices(self.agent_v, cum_weights=self.agent_c)[0]
        proto = r.choices(self.proto_v, cum_weights=self.proto_c)[0]
        return '%s - %s [%s] "%s %s %s" %d %d "%s" "%s"\n' % (
            ip, user, self.timestr(t), method, self.path(), proto, status, size, ref, agent)


def parse_size(s):
    s = s.strip().upper()
    mult = 1
    for suf, m in (("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30)):
        if s.endswith(suf) or s.endswith(suf + "B"):
            mult = m
            s = s[:s.index(suf)]
            break
    return int(float(s) * mult)


ESCAPED_AGENT = 'Mozilla/5.0 (compatible; \\"QuoteBot\\" v2; +http://bot.example.org/)'


def generate(path, size, seed=1, hours=6, start=1709884800, escaped_quotes=0.0):
    """Write about size bytes (whole lines, at least size) to path. Returns (lines, bytes).
    escaped_quotes: percentage of lines whose user agent holds \\" (see the top comment)."""
    g = Gen(seed, start, hours)
    eq = random.Random(seed + 1)
    span = hours * 3600
    n = nbytes = 0
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="ascii", newline="\n") as f:
        batch = []
        bb = 0
        while nbytes < size:
            t = start + int(span * (nbytes + bb) / size)
            ln = g.line(t)
            if escaped_quotes and eq.random() * 100 < escaped_quotes:
                head, _, _ = ln.rstrip("\n").rpartition(' "')
                ln = '%s "%s"\n' % (head, ESCAPED_AGENT)
            batch.append(ln)
            bb += len(ln)
            n += 1
            if bb >= 1 << 20:
                f.write("".join(batch))
                nbytes += bb
                batch, bb = [], 0
        if batch:
            f.write("".join(batch))
            nbytes += bb
    os.replace(tmp, path)
    return n, nbytes


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="500M", help="bytes to write (k/M/G suffixes)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--hours", type=int, default=6, help="time span of the log")
    ap.add_argument("--escaped-quotes", type=float, default=0.0, metavar="PCT",
                    help="percentage of lines with \\\" in the user agent")
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args()
    n, b = generate(a.output, parse_size(a.size), a.seed, a.hours, escaped_quotes=a.escaped_quotes)
    print("%s: %d lines, %d bytes" % (a.output, n, b))


if __name__ == "__main__":
    sys.exit(main())
