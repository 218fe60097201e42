"""The kubernetes_metadata filter (fluent-plugin-kubernetes_metadata_filter v3) against a
stand-in Kubernetes API on 127.0.0.1 (pods and namespaces as the API returns them, bearer
token checked), over HTTP and over HTTPS with the in-cluster defaults (the service's
environment variables, secret_dir's ca.crt and token). The expected records follow the
plugin's code: record.merge("docker" => ..., "kubernetes" => ...), the nested keys in the
order its get_metadata_for_record and parse_pod_metadata build them."""
import http.server, json, os, ssl, subprocess, threading
import lstest
from lstest import conf, run, tmpdir, write

CID = "0123456789abcdef" * 4
POD = {
    "kind": "Pod",
    "metadata": {
        "name": "web-7d4b9c-xk2lp", "namespace": "shop",
        "uid": "5e1f2a3b-0000-4000-8000-000000000001",
        "labels": {"app": "web", "pod-template-hash": "7d4b9c"},
        "annotations": {"prometheus.io/scrape": "true", "kubectl.kubernetes.io/restartedAt": "x",
                        "team": "checkout"},
        "ownerReferences": [{"kind": "ReplicaSet", "name": "web-7d4b9c", "uid": "r1"}],
    },
    "spec": {"nodeName": "node-3"},
    "status": {
        "podIP": "10.1.2.3",
        "containerStatuses": [
            {"name": "sidecar", "image": "envoy:1.29", "imageID": "", "containerID": "docker://" + "f" * 64},
            {"name": "nginx", "image": "nginx:1.25", "imageID": "docker-pullable://nginx@sha256:abc",
             "containerID": "containerd://" + CID},
        ],
    },
}
NS = {"kind": "Namespace", "metadata": {"name": "shop", "uid": "ns-uid-1",
                                         "creationTimestamp": "2020-01-01T00:00:00Z",
                                         "labels": {"env": "prod"},
                                         "annotations": {"team": "payments"}}}


class Api:
    def __init__(self, token="s3cret", tls=None):
        self.gets, self.lock, outer = [], threading.Lock(), self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                with outer.lock:
                    outer.gets.append(self.path)
                # resourceVersion=0 (read from the API server's cache) changes nothing here
                path = self.path.replace("?resourceVersion=0", "")
                if self.headers.get("Authorization") != "Bearer " + token:
                    code, body = 401, {"kind": "Status", "code": 401}
                elif path == "/api":
                    code, body = 200, {"kind": "APIVersions", "versions": ["v1"]}
                elif path == "/api/v1":
                    # discovery, which kubeclient (the plugin's client) reads first
                    code, body = 200, {"kind": "APIResourceList", "groupVersion": "v1",
                                       "resources": [
                                           {"name": "pods", "singularName": "", "kind": "Pod",
                                            "namespaced": True, "verbs": ["get", "list"]},
                                           {"name": "namespaces", "singularName": "",
                                            "kind": "Namespace", "namespaced": False,
                                            "verbs": ["get", "list"]}]}
                elif path == "/api/v1/namespaces/shop/pods/web-7d4b9c-xk2lp":
                    code, body = 200, POD
                elif path == "/api/v1/namespaces/shop":
                    code, body = 200, NS
                else:
                    code, body = 404, {"kind": "Status", "code": 404}
                msg = json.dumps(body, indent=1).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(msg)))
                self.end_headers()
                self.wfile.write(msg)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        lstest.on_cleanup(self.httpd.shutdown)


def container_log(d, pod="web-7d4b9c-xk2lp", ns="shop", container="nginx", lines=2, cid=CID):
    cdir = os.path.join(d, "var", "log", "containers")
    os.makedirs(cdir, exist_ok=True)
    with open(os.path.join(cdir, "%s_%s_%s-%s.log" % (pod, ns, container, cid)), "a") as f:
        for i in range(lines):
            f.write(json.dumps({"log": "line %d\n" % i, "stream": "stdout",
                                "time": "2026-12-05T10:00:0%d.123456789Z" % i}) + "\n")


def config(d, filt):
    return conf("""
<source>
  @type tail
  path {d}/var/log/containers/*.log
  pos_file {d}/pos
  read_from_head true
  tag kubernetes.*
  <parse>
    @type json
  </parse>
</source>
<filter kubernetes.**>
  @type kubernetes_metadata
{filt}
</filter>
<match **>
  @type stdout
  <format>
    @type json
  </format>
</match>
""".format(d=d, filt=filt), d)


def records(p):
    assert p.returncode == 0, p.stderr[-3000:]
    return [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]


def token_file(d, tok="s3cret"):
    path = os.path.join(d, "token")
    write(path, tok + "\n")
    return path


def in_cluster_api(d):
    """An HTTPS stand-in API with a certificate made by openssl, and a service account
    directory (ca.crt, token) as a pod has: (api, its path)."""
    key, crt = os.path.join(d, "api.key"), os.path.join(d, "api.crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", crt, "-days", "2", "-subj", "/CN=kubernetes",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    api = Api(tls=(crt, key))
    sa = os.path.join(d, "sa")
    os.makedirs(sa)
    write(os.path.join(sa, "ca.crt"), open(crt).read())
    token_file(sa)
    return api, sa


def expected_kube(url):
    return {
        "container_name": "nginx", "namespace_name": "shop", "pod_name": "web-7d4b9c-xk2lp",
        "container_image": "nginx:1.25", "container_image_id": "docker-pullable://nginx@sha256:abc",
        "pod_id": "5e1f2a3b-0000-4000-8000-000000000001", "pod_ip": "10.1.2.3", "host": "node-3",
        "labels": {"app": "web", "pod-template-hash": "7d4b9c"},
        "annotations": {"prometheus.io/scrape": "true", "team": "checkout"},
        "master_url": url, "namespace_id": "ns-uid-1", "namespace_labels": {"env": "prod"},
        "namespace_annotations": {"team": "payments"},
    }


def test_tag_only_without_an_api():
    d = tmpdir()
    container_log(d)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
    p = run(["-c", config(d, "  secret_dir %s/none" % d), "--oneshot"], env=env)
    recs = records(p)
    assert len(recs) == 2, recs
    assert recs[0] == {"log": "line 0\n", "stream": "stdout",
                       "docker": {"container_id": CID},
                       "kubernetes": {"container_name": "nginx", "namespace_name": "shop",
                                      "pod_name": "web-7d4b9c-xk2lp"}}, recs[0]
    assert list(recs[0]["kubernetes"]) == ["container_name", "namespace_name", "pod_name"]
    # /var/log/pods/NS_POD_UID/CONTAINER/N.log: no container id in the path, so no "docker"
    d = tmpdir()
    pdir = os.path.join(d, "var", "log", "pods", "shop_web-7d4b9c-xk2lp_5e1f2a3b-0000", "nginx")
    os.makedirs(pdir)
    write(os.path.join(pdir, "0.log"), json.dumps({"log": "x\n", "stream": "stderr"}) + "\n")
    text = open(config(d, "  secret_dir %s/none" % d)).read().replace(
        "var/log/containers/*.log", "var/log/pods/*/*/*.log")
    write(os.path.join(d, "pods.conf"), text)
    recs = records(run(["-c", os.path.join(d, "pods.conf"), "--oneshot"], env=env))
    assert recs == [{"log": "x\n", "stream": "stderr",
                     "kubernetes": {"container_name": "nginx", "namespace_name": "shop",
                                    "pod_name": "web-7d4b9c-xk2lp"}}], recs


def test_pod_and_namespace_from_the_api_cached_per_container():
    api = Api()
    d = tmpdir()
    container_log(d, lines=3)
    url = "http://127.0.0.1:%d" % api.port      # master_url: as configured
    p = run(["-c", config(d, """  kubernetes_url http://127.0.0.1:%d
  bearer_token_file %s
  annotation_match ["^prometheus\\\\.io/", "^team$"]
  secret_dir %s/none""" % (api.port, token_file(d), d)), "--oneshot"])
    recs = records(p)
    assert len(recs) == 3, recs
    want = expected_kube(url)
    for r in recs:
        assert r["kubernetes"] == want, r
        assert list(r["kubernetes"]) == list(want), list(r["kubernetes"])
        assert r["docker"] == {"container_id": CID}, r
        assert list(r) == ["log", "stream", "docker", "kubernetes"], list(r)
    # one lookup of the pod and one of its namespace for the three records (plus api_valid?)
    assert api.gets == ["/api", "/api/v1/namespaces/shop/pods/web-7d4b9c-xk2lp?resourceVersion=0",
                        "/api/v1/namespaces/shop?resourceVersion=0"], api.gets


def test_orphans_unknown_pods_and_a_record_with_its_own_kubernetes_fields():
    api = Api()
    d = tmpdir()
    container_log(d, pod="ghost-1", ns="nowhere", lines=1)
    p = run(["-c", config(d, """  kubernetes_url http://127.0.0.1:%d/api/
  bearer_token_file %s
  skip_master_url true""" % (api.port, token_file(d))), "--oneshot"])
    recs = records(p)
    assert recs == [{"log": "line 0\n", "stream": "stdout", "docker": {"container_id": CID},
                     "kubernetes": {"container_name": "nginx", "namespace_name": ".orphaned",
                                    "pod_name": "ghost-1", "orphaned_namespace": "nowhere",
                                    "namespace_id": "orphaned"}}], recs
    # a pod gone from a namespace that still exists: the container id stands for the pod id
    d = tmpdir()
    container_log(d, pod="gone-2", ns="shop", lines=1)
    p = run(["-c", config(d, """  kubernetes_url http://127.0.0.1:%d
  bearer_token_file %s
  skip_master_url true
  skip_labels true""" % (api.port, token_file(d))), "--oneshot"])
    kube = records(p)[0]["kubernetes"]
    assert kube == {"container_name": "nginx", "namespace_name": "shop", "pod_name": "gone-2",
                    "pod_id": CID, "namespace_id": "ns-uid-1"}, kube
    # lookup_from_k8s_field: a forwarded record that already names its pod
    d = tmpdir()
    log = os.path.join(d, "in.log")
    write(log, json.dumps({"msg": "hi", "kubernetes": {"namespace_name": "shop",
                                                       "pod_name": "web-7d4b9c-xk2lp",
                                                       "container_name": "nginx", "x": 1},
                           "docker": {"container_id": "abc"}}) + "\n")
    cfg = conf("""
<source>
  @type tail
  path %s
  pos_file %s/pos
  read_from_head true
  tag app.x
  <parse>
    @type json
  </parse>
</source>
<filter app.**>
  @type kubernetes_metadata
  kubernetes_url http://127.0.0.1:%d
  bearer_token_file %s
  skip_namespace_metadata true
</filter>
<match **>
  @type stdout
  <format>
    @type json
  </format>
</match>
""" % (log, d, api.port, token_file(d)), d)
    r = records(run(["-c", cfg, "--oneshot"]))[0]
    assert list(r) == ["msg", "kubernetes", "docker"], r
    assert r["docker"] == {"container_id": CID}, r     # the API's, over the record's
    assert list(r["kubernetes"])[:6] == ["container_name", "namespace_name", "pod_name",
                                         "container_image", "container_image_id", "pod_id"], r
    assert "x" not in r["kubernetes"] and "namespace_id" not in r["kubernetes"], r


def test_api_down_or_refusing_the_token_fails_the_configuration():
    d = tmpdir()
    port = lstest.free_port()
    p = run(["-c", config(d, "  kubernetes_url http://127.0.0.1:%d" % port), "--dry-run"])
    assert p.returncode != 0, p.stderr
    assert "logship.conf:" in p.stderr and "Invalid Kubernetes API v1 endpoint" in p.stderr, \
        p.stderr
    api = Api()
    p = run(["-c", config(d, "  kubernetes_url http://127.0.0.1:%d\n  bearer_token_file %s"
                          % (api.port, token_file(d, "wrong"))), "--dry-run"])
    assert p.returncode != 0 and "HTTP 401" in p.stderr, p.stderr


def test_in_cluster_defaults_over_https():
    d = tmpdir()
    api, sa = in_cluster_api(d)
    container_log(d, lines=1)
    env = dict(os.environ, KUBERNETES_SERVICE_HOST="127.0.0.1",
               KUBERNETES_SERVICE_PORT=str(api.port))
    p = run(["-c", config(d, "  secret_dir %s" % sa), "--oneshot"], env=env)
    recs = records(p)
    kube = recs[0]["kubernetes"]
    want = expected_kube("https://127.0.0.1:%d/api" % api.port)
    del want["annotations"], want["namespace_annotations"]    # no annotation_match: none
    assert kube == want, kube
    assert kube["pod_id"] == POD["metadata"]["uid"] and kube["host"] == "node-3", kube
    assert kube["master_url"] == "https://127.0.0.1:%d/api" % api.port, kube
    # the certificate is checked: without the CA the API is refused at start
    os.unlink(os.path.join(sa, "ca.crt"))
    p = run(["-c", config(d, "  secret_dir %s" % sa), "--dry-run"], env=env)
    assert p.returncode != 0 and "Invalid Kubernetes API" in p.stderr, p.stderr


def test_kubernetes_containers_example_runs_in_a_cluster():
    # conf/kubernetes-containers.conf unchanged, its paths and the cluster pointed at the
    # stand-in API through its #{ENV[...]} values: one gzip file per namespace and hour
    import glob, gzip
    d = tmpdir()
    api, sa = in_cluster_api(d)
    container_log(d, lines=3)
    container_log(d, pod="ghost-1", ns="nowhere", lines=2, cid="9" * 64)
    env = dict(os.environ, KUBERNETES_SERVICE_HOST="127.0.0.1",
               KUBERNETES_SERVICE_PORT=str(api.port), K8S_LOG_DIR=d + "/var/log/containers",
               K8S_SECRET_DIR=sa, LOGSHIP_STATE_DIR=d, LOGSHIP_OUT_DIR=d + "/out")
    p = run(["-c", os.path.join(lstest.ROOT, "conf", "kubernetes-containers.conf"), "--oneshot"],
            env=env, timeout=60)
    assert p.returncode == 0, p.stderr[-3000:]
    got = {}
    for f in glob.glob(d + "/out/k8s/*/*") + glob.glob(d + "/out/k8s/.*/*"):
        got[os.path.basename(os.path.dirname(f))] = [json.loads(l) for l in gzip.open(f, "rt")]
    assert sorted(got) == [".orphaned", "shop"], (got, p.stderr[-2000:])
    assert [r["log"] for r in got["shop"]] == ["line 0\n", "line 1\n", "line 2\n"], got
    assert got["shop"][0]["kubernetes"]["pod_ip"] == "10.1.2.3", got["shop"][0]
    assert got[".orphaned"][0]["kubernetes"]["orphaned_namespace"] == "nowhere", got
