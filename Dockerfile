# logship container image (Debian 12 slim), built from this source tree.
#
#   docker build -t logship .
#   docker run --rm logship --version
#
# Sidecar usage (e.g. a Kubernetes pod next to nginx): share an emptyDir
# volume mounted at /var/log/nginx in both containers, and make nginx write
# real files there (the official nginx image links access.log to
# /dev/stdout; point access_log at /var/log/nginx/access.log in its config).
# Give logship a persistent volume at /var/lib/logship (positions and the
# file buffer: with it, a restarted pod neither loses nor repeats records),
# and mount your configuration at /etc/logship/logship.conf (a Secret if it
# holds credentials; prefer AWS_* environment variables or the pod's role).
# The process runs as uid 10001 in group adm (gid 4): give the log volume a
# group it can read (fsGroup / supplementalGroups). It stops gracefully on
# SIGTERM (set terminationGracePeriodSeconds to cover the flush) and reloads
# on SIGHUP. Metrics: add a monitor_agent source with `bind 0.0.0.0` (it
# binds 127.0.0.1 by default) and expose port 24220 for /metrics.

FROM debian:12-slim AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential pkg-config libev-dev libcurl4-openssl-dev zlib1g-dev libssl-dev \
      libpcre2-dev libmariadb-dev libexpat1-dev libdeflate-dev libmicrohttpd-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN make clean && make NO_DEPS=1 -j"$(nproc)" \
 && strip --strip-unneeded build/logship build/logship-http \
 && build/logship --version

FROM debian:12-slim
# libmariadb3 and libmicrohttpd12 are dlopen()ed by rds_slowlog and monitor_agent: ldd does not
# list them, but those plugins need them
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libev4 libcurl4 zlib1g libssl3 libpcre2-8-0 libmariadb3 libexpat1 libdeflate0 \
      libmicrohttpd12 ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --gid adm --home-dir /var/lib/logship --no-create-home \
      --shell /usr/sbin/nologin logship \
 && install -d -o logship -g adm -m 0750 /var/lib/logship /var/log/logship /etc/logship
COPY --from=build /src/build/logship /usr/bin/logship
COPY --from=build /src/build/logship-http /usr/lib/logship/logship-http
COPY --chown=root:adm --chmod=0640 packaging/logship.conf /etc/logship/logship.conf
COPY conf/ /usr/share/doc/logship/examples/
USER logship:adm
VOLUME ["/var/lib/logship"]
ENV LOGSHIP_CONF=/etc/logship/logship.conf
# validate at build time that the default configuration is accepted
RUN ["/usr/bin/logship", "--dry-run"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/logship"]
CMD ["-c", "/etc/logship/logship.conf"]
