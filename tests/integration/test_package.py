"""The Debian package as `make deb` builds it (packaging/build-deb.sh: dpkg-buildpackage with
packaging/debian on a copy of the source tree).

The package is built from source here, not from the binary under test: what is checked is the
package, hardened by dpkg-buildflags, which only a dpkg-buildpackage build has (a sanitizer or
plain `make` binary would fail the hardening check). So under SANITIZE it is skipped (the plain
run checks the same package). LOGSHIP_DEB=path reuses a built one.

Checked: lintian (no errors, no warnings), the hardening (readelf: BIND_NOW, GNU_RELRO, the
stack protector and FORTIFY's *_chk functions), Depends/Recommends, then in a fresh Debian 12
root (the cached debootstrap base of scripts/fresh-root.sh, or debootstrap minbase): apt-get
install with a policy-rc.d that refuses service starts, the system user and its directories,
the service enabled but not started, the agent run as the service user on the packaged
configuration with a conf.d/ file (tail -> out_file: the line arrives), an upgrade that leaves
an admin's `disable` alone, and purges with and without undelivered buffer chunks.
"""
import glob, gzip, os, re, shutil, socket, subprocess, tempfile, time
import lstest
from lstest import ROOT, LOGSHIP, tmpdir, wait_until, write, read

CACHE = os.environ.get("LOGSHIP_ROOT_CACHE", "/var/cache/logship-ci")
SERVICE_USER = ["setpriv", "--reuid=logship", "--regid=adm", "--groups=adm,logship", "--"]

def sh(*args, check=True, timeout=300, **kw):
    p = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(args)} -> {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p

def build_deb():
    if os.environ.get("LOGSHIP_DEB"):
        return os.environ["LOGSHIP_DEB"]
    for tool in ("dpkg-buildpackage", "dh", "lintian"):
        assert shutil.which(tool), f"{tool} missing (packaging/install-deps.sh test installs it)"
    t0 = time.time()
    p = sh("sh", os.path.join(ROOT, "packaging", "build-deb.sh"), tmpdir(), timeout=1800)
    deb = p.stdout.strip().splitlines()[-1]
    print(f"  built {os.path.basename(deb)} in {time.time() - t0:.0f}s")
    return deb

# ---------------------------------------------------------------------------------------------
# a fresh root

def host_mirror():
    for f in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        uri = None
        for line in read(f).splitlines():
            if line.startswith("URIs:"):
                uri = line.split()[1]
            elif line.startswith("Suites:") and "bookworm" in line.split()[1:] and uri:
                return uri
    for f in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
        if os.path.exists(f):
            for line in read(f).splitlines():
                w = line.split()
                if len(w) >= 3 and w[0] == "deb" and w[2] == "bookworm":
                    return w[1]
    return "http://deb.debian.org/debian"

def make_root():
    """A new Debian 12 root in a temporary directory; removed after the test."""
    root = tempfile.mkdtemp(prefix="ls-root-", dir="/var/tmp")
    os.chmod(root, 0o755)   # its "/": the service user must get through it (mkdtemp makes 0700)
    lstest.on_cleanup(lambda: subprocess.run(["rm", "-rf", "--one-file-system", root]))
    bases = sorted(glob.glob(os.path.join(CACHE, "bookworm-minbase-*.tar.zst")), key=os.path.getmtime)
    if bases and shutil.which("zstd"):
        sh("tar", "-C", root, "--zstd", "-xf", bases[-1], timeout=600)
    else:
        if not shutil.which("debootstrap"):
            raise lstest.Skip(f"no base root in {CACHE} and no debootstrap (install-deps.sh test installs it)")
        p = sh("debootstrap", "--variant=minbase", "bookworm", root, host_mirror(), check=False, timeout=1200)
        if p.returncode != 0:
            raise lstest.Skip("debootstrap cannot make a root here:\n" + (p.stdout + p.stderr)[-1500:])
    # the host's apt sources and settings (mirror, proxy, keys), as scripts/fresh-root.sh does
    if glob.glob("/etc/apt/sources.list.d/*") and os.path.exists(root + "/etc/apt/sources.list"):
        os.unlink(root + "/etc/apt/sources.list")
    for d in ("/etc/apt", "/usr/share/keyrings"):
        for dirpath, _, files in os.walk(d):
            for f in files:
                src = os.path.join(dirpath, f)
                dst = root + src
                if d == "/usr/share/keyrings" and os.path.exists(dst):
                    continue
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                shutil.copy2(src, dst)
    # no service starts in this root: invoke-rc.d and deb-systemd-invoke ask this first
    write(root + "/usr/sbin/policy-rc.d", "#!/bin/sh\nexit 101\n")
    os.chmod(root + "/usr/sbin/policy-rc.d", 0o755)
    return root

# Own mount and pid namespaces: the mounts and every process started in the root go away when
# the command ends. Works where the suite itself runs in such a root (CI's fresh-root step).
IN_ROOT = r'''
root=$1; cmd=$2
mount --rbind /dev "$root/dev"
mount -t proc proc "$root/proc"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
exec chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive /bin/sh -ec "$cmd"
'''

def unshare():
    """unshare's arguments. Where the suite itself runs in a chroot (CI's fresh root) / is not a
    mount point, so unshare cannot make it private; there the mounts must not be shared with the
    host already (scripts/fresh-root.sh gives the chroot its own private mount namespace)."""
    mounts = [l.split() for l in open("/proc/self/mountinfo")]
    if any(f[4] == "/" for f in mounts):
        prop = "private"
    elif any(x.startswith("shared:") for f in mounts for x in f[6:f.index("-")]):
        raise lstest.Skip("in a chroot whose mounts are shared with the host: mounts made for the "
                          "test root would appear there (run the suite in its own mount namespace)")
    else:
        prop = "unchanged"
    return ["unshare", "--mount", "--pid", "--fork", "--propagation", prop]

def in_root(root, cmd, check=True, timeout=600):
    return sh(*unshare(), "/bin/sh", "-ec", IN_ROOT, "in-root", root, cmd, check=check, timeout=timeout)

def in_root_bg(root, cmd):
    return subprocess.Popen(unshare() + ["/bin/sh", "-ec", IN_ROOT, "in-root", root, cmd],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

def apt_install(root, *debs):
    names = " ".join("/tmp/" + os.path.basename(d) for d in debs)
    for d in debs:
        shutil.copy(d, root + "/tmp/")
    # the agent must not be running afterwards: no systemd here, so nothing may start it
    return in_root(root, f"apt-get update -qq && apt-get install -y -q {names}\n"
                         "for p in /proc/[0-9]*; do if [ \"$(cat $p/comm 2>/dev/null)\" = logship ]; then "
                         "echo 'logship is running after the install' >&2; exit 1; fi; done",
                   timeout=900)

def stat_in_root(root, path):
    """(owner, group, octal mode) as the root's own passwd/group name them"""
    return tuple(in_root(root, f"stat -c '%U %G %a' {path}").stdout.split())

def enabled(root):
    return os.path.islink(root + "/etc/systemd/system/multi-user.target.wants/logship.service")

def run_agent(root, until, what, timeout=30):
    """Run the installed agent as the service runs it (user logship, group adm, supplementary
    group logship) on the packaged configuration until until() holds, then stop it with TERM.
    Returns (its log, its exit status)."""
    for f in ("/run/ls-stop", "/var/tmp/agent.log"):
        if os.path.exists(root + f):
            os.unlink(root + f)
    a = in_root_bg(root, " ".join(SERVICE_USER) + " /usr/bin/logship -c /etc/logship/logship.conf "
                         "2>/var/tmp/agent.log &\npid=$!\n"
                         "while [ ! -e /run/ls-stop ] && kill -0 $pid 2>/dev/null; do sleep 0.1; done\n"
                         "kill -TERM $pid 2>/dev/null || true\nrc=0; wait $pid || rc=$?; echo \"exit=$rc\"")
    log = lambda: read(root + "/var/tmp/agent.log") if os.path.exists(root + "/var/tmp/agent.log") else ""
    try:
        wait_until(lambda: "logship started" in log() or a.poll() is not None, timeout=30,
                   what="the installed agent to start")
        assert a.poll() is None, "the agent ended:\n" + log() + (a.stdout.read() or "")
        wait_until(until, timeout=timeout, what=what)
    finally:
        write(root + "/run/ls-stop", "")
        out, _ = a.communicate(timeout=60)
    m = re.search(r"exit=(\d+)", out)
    return log(), int(m.group(1)) if m else None

SHIP_CONF = """<source>
  @type tail
  path /var/tmp/{name}.in
  pos_file /var/lib/logship/{name}.pos
  tag {name}.test
  read_from_head true
  <parse>
    @type none
  </parse>
</source>
<match {name}.**>
  @type file
  path /var/log/logship/{name}/out
  <format>
    @type json
  </format>
  <buffer time>
    @type file
    path /var/lib/logship/buffer/{name}
    timekey 1h
    {flush}
  </buffer>
</match>
"""

def check_hardening(tree):
    for b in ("usr/bin/logship", "usr/lib/logship/logship-http"):
        path = os.path.join(tree, b)
        dyn = sh("readelf", "-dW", path).stdout
        assert re.search(r"\(FLAGS\)\s+BIND_NOW", dyn) and re.search(r"FLAGS_1.*\bNOW\b.*\bPIE\b", dyn), \
            f"{b}: not linked with -z now / as PIE:\n{dyn}"
        assert "GNU_RELRO" in sh("readelf", "-lW", path).stdout, f"{b}: no RELRO segment"
        syms = set(re.findall(r"\b(__\w+_chk(?:_fail)?)\b", sh("readelf", "--dyn-syms", "-W", path).stdout))
        assert "__stack_chk_fail" in syms, f"{b}: no stack protector"
        assert syms - {"__stack_chk_fail"}, f"{b}: no FORTIFY (*_chk) functions: {syms}"

def test_deb_policy_install_upgrade_purge():
    if os.geteuid() != 0:
        raise lstest.Skip("needs root (chroot, mounts)")
    if lstest.SANITIZE and not os.environ.get("LOGSHIP_DEB"):
        # the package never holds the binary under test: the plain run checks the same package
        raise lstest.Skip("the package is built from source with Debian's flags, not with SANITIZE")
    deb = build_deb()

    # -- the package as built
    info = sh("dpkg-deb", "-f", deb).stdout
    fields = dict(re.findall(r"^(\S+): (.*)$", info, re.M))
    version = sh(LOGSHIP, "--version").stdout.split()[1]
    assert fields["Package"] == "logship" and fields["Version"] == version, \
        f"the package's version (debian/changelog) is not logship --version's {version}:\n{info}"
    depends = [d.split()[0] for d in fields["Depends"].split(", ")]
    for d in ("libc6", "libev4", "procps", "ca-certificates", "adduser"):
        assert d in depends, f"Depends lacks {d}: {fields['Depends']}"
    # dlopen'd only when configured: recommended, not required
    recommends = [d.split()[0] for d in fields.get("Recommends", "").split(", ")]
    for d in ("libmariadb3", "libmicrohttpd12", "libzstd1", "liblzma5", "libsnappy1v5"):
        assert d in recommends and d not in depends, f"{d} must be a Recommends:\n{info}"
    lint = sh("lintian", "--fail-on", "error,warning", deb, check=False)
    tags = [l for l in lint.stdout.splitlines() if re.match(r"[EW]: ", l)]
    assert lint.returncode == 0 and not tags, "lintian:\n" + lint.stdout + lint.stderr
    tree = tmpdir()
    sh("dpkg-deb", "-x", deb, tree)
    check_hardening(tree)
    ctl = tmpdir()
    sh("dpkg-deb", "-e", deb, ctl)
    assert sorted(read(os.path.join(ctl, "conffiles")).split()) == ["/etc/logrotate.d/logship",
                                                                    "/etc/logship/logship.conf"]
    unit = read(os.path.join(tree, "lib/systemd/system/logship.service"))
    assert re.search(r"^ExecStart=/usr/bin/logship -c \$\{LOGSHIP_CONF\}$", unit, re.M), \
        "the unit logs to the journal (no -o):\n" + unit
    settings = {}
    for line in unit.splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            k, _, v = line.partition("=")
            settings.setdefault(k, []).append(v)
    for k, v in (("User", "logship"), ("Group", "adm"), ("SupplementaryGroups", "logship"),
                 ("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("ProtectHome", "yes"),
                 ("PrivateTmp", "yes"), ("Restart", "on-failure"), ("CapabilityBoundingSet", ""),
                 ("ExecReload", "/bin/kill -HUP $MAINPID")):
        assert settings.get(k) == [v], (k, settings.get(k))
    assert set(settings["ReadWritePaths"][0].split()) == {"/var/lib/logship", "/var/log/logship"}
    assert "@include conf.d/*.conf" in read(os.path.join(tree, "etc/logship/logship.conf"))
    if shutil.which("systemd-analyze"):
        # the root has no systemd: verify here, with the binary where the extracted tree has it
        u = write(os.path.join(tmpdir(), "logship.service"), unit.replace("/usr/bin/logship", tree + "/usr/bin/logship"))
        v = sh("systemd-analyze", "verify", "--man=no", u, check=False)
        noise = [l for l in (v.stdout + v.stderr).splitlines() if l.strip()]
        assert v.returncode == 0 and not noise, "systemd-analyze verify:\n" + "\n".join(noise)
    man = gzip.decompress(open(os.path.join(tree, "usr/share/man/man1/logship.1.gz"), "rb").read()).decode()
    assert ".SH FILES" in man and "/etc/logship/conf.d/" in man
    if shutil.which("groff"):
        g = subprocess.run(["groff", "-man", "-ww", "-z"], input=man, capture_output=True, text=True)
        assert g.returncode == 0 and not g.stderr.strip(), g.stderr

    # -- installed into a fresh root
    root = make_root()
    t0 = time.time()
    p = apt_install(root, deb)
    print(f"  installed into a fresh root in {time.time() - t0:.0f}s")
    assert in_root(root, "dpkg-query -W -f='${Status} ${Version}' logship").stdout == f"install ok installed {version}"
    for d in ("libmariadb3", "libmicrohttpd12"):   # apt installs Recommends
        in_root(root, f"dpkg-query -W {d} >/dev/null")
    in_root(root, "! dpkg-query -W -f='${Status}' logrotate 2>/dev/null | grep -q 'ok installed'")
    passwd = in_root(root, "getent passwd logship").stdout.strip().split(":")
    assert int(passwd[2]) < 1000 and passwd[5] == "/var/lib/logship" and passwd[6] == "/usr/sbin/nologin", passwd
    assert "logship" in in_root(root, "getent group adm").stdout.strip().split(":")[3].split(","), \
        "logship must be in group adm (to read /var/log/nginx)"
    assert stat_in_root(root, "/var/lib/logship") == ("logship", "logship", "750")
    assert stat_in_root(root, "/var/log/logship") == ("logship", "adm", "2750")
    assert stat_in_root(root, "/etc/logship/logship.conf") == ("root", "logship", "640")
    assert stat_in_root(root, "/etc/logship/conf.d") == ("root", "logship", "750")
    assert enabled(root), "the service is enabled on install"
    # logrotate is a Suggests (the service logs to the journal); its snippet must still be valid
    lr = in_root(root, "apt-get install -y -q --no-install-recommends logrotate >/dev/null && "
                       "logrotate -d /etc/logrotate.d/logship", check=False)
    assert lr.returncode == 0 and "error" not in lr.stderr.lower(), lr.stdout + lr.stderr

    # the packaged configuration with an empty conf.d/, as the unit's ExecStartPre checks it
    p = in_root(root, " ".join(SERVICE_USER) + " /usr/bin/logship -c /etc/logship/logship.conf --dry-run -q",
                check=False)
    assert p.returncode == 0 and "[warn]" not in p.stdout + p.stderr, p.stdout + p.stderr
    # the installed logship finds its HTTP helper in /usr/lib/logship (out_s3 checks at start)
    write(root + "/var/tmp/s3.conf", "<source>\n  @type sample\n  tag t\n</source>\n<match t>\n  @type s3\n"
          "  s3_bucket b\n  s3_region us-east-1\n  aws_key_id k\n  aws_sec_key s\n</match>\n")
    p = in_root(root, "/usr/bin/logship --dry-run -c /var/tmp/s3.conf", check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    p = in_root(root, "LOGSHIP_HTTP_HELPER=/nonexistent /usr/bin/logship --dry-run -c /var/tmp/s3.conf", check=False)
    assert p.returncode != 0 and "LOGSHIP_HTTP_HELPER" in p.stderr, p.stdout + p.stderr

    # the packaged configuration plus a conf.d/ file, run as the service runs it: a line arrives
    write(root + "/etc/logship/conf.d/ship.conf",
          SHIP_CONF.format(name="ship", flush="flush_mode immediate\n    flush_at_shutdown true"))
    write(root + "/var/tmp/ship.in", "hello from the package\n")
    p = in_root(root, " ".join(SERVICE_USER) + " /usr/bin/logship -c /etc/logship/logship.conf --dry-run",
                check=False)
    assert p.returncode == 0, "dry-run as the service user:\n" + p.stdout + p.stderr
    out = lambda: "".join(read(f) for f in glob.glob(root + "/var/log/logship/ship/*"))
    log, rc = run_agent(root, lambda: "hello from the package" in out(), "the line in out_file's file")
    assert rc == 0 and not re.search(r"\[(error|fatal)\]", log), log
    assert out().strip() == '{"message":"hello from the package"}', out()

    # upgrade: an admin's `systemctl disable` stays (the root has no systemd: what disable does
    # is remove the unit's symlink, which is what deb-systemd-helper reads); the configuration stays
    os.unlink(root + "/etc/systemd/system/multi-user.target.wants/logship.service")
    newer = bump_version(deb, version + "+test1")
    apt_install(root, newer)
    assert in_root(root, "dpkg-query -W -f='${Version}' logship").stdout == version + "+test1"
    assert not enabled(root), "the upgrade enabled the service the admin had disabled"
    assert os.path.exists(root + "/etc/logship/conf.d/ship.conf")

    # purge with everything delivered: nothing of logship is left
    os.unlink(root + "/etc/logship/conf.d/ship.conf")
    p = in_root(root, "apt-get purge -y -q logship")
    assert "purge kept" not in p.stdout + p.stderr, p.stdout + p.stderr
    for path in ("/usr/bin/logship", "/etc/logship", "/var/lib/logship", "/var/log/logship",
                 "/lib/systemd/system/logship.service", "/etc/logrotate.d/logship",
                 "/etc/systemd/system/multi-user.target.wants/logship.service"):
        assert not os.path.lexists(root + path), f"{path} left behind by purge"

    # install again (the user exists by now), leave a chunk undelivered, purge: it is kept, and said
    apt_install(root, deb)
    assert enabled(root), "a new install enables the service again"
    write(root + "/etc/logship/conf.d/held.conf",
          SHIP_CONF.format(name="held", flush="timekey_wait 1h\n    flush_at_shutdown false"))
    write(root + "/var/tmp/held.in", "not delivered yet\n")
    chunks = lambda: glob.glob(root + "/var/lib/logship/buffer/held/logship.*.chunk")
    log, rc = run_agent(root, lambda: chunks() and os.path.getsize(chunks()[0]) > 100, "a chunk on disk")
    assert rc == 0, log
    kept = chunks()
    assert len(kept) == 1 and not glob.glob(root + "/var/log/logship/held/*"), kept
    p = in_root(root, "apt-get purge -y -q logship")
    msg = p.stdout + p.stderr
    assert "logship: purge kept /var/lib/logship" in msg and "1 buffer chunk(s) not yet delivered" in msg, msg
    assert [os.path.exists(c) for c in kept] == [True], "the undelivered chunk was deleted"
    assert os.path.exists(root + "/var/lib/logship/held.pos"), "its position is kept with it"
    assert not os.path.exists(root + "/var/log/logship") and not os.path.exists(root + "/usr/bin/logship")

def bump_version(deb, version):
    """The same package with a higher version (the maintainer scripts are what an upgrade runs)."""
    d = tmpdir()
    sh("dpkg-deb", "-R", deb, d + "/pkg")
    ctl = d + "/pkg/DEBIAN/control"
    write(ctl, re.sub(r"^Version: .*$", "Version: " + version, read(ctl), flags=re.M))
    out = os.path.join(d, f"logship_{version}_" + os.path.basename(deb).rsplit("_", 1)[1])
    sh("dpkg-deb", "--root-owner-group", "-b", d + "/pkg", out)
    return out

def test_journal_priorities():
    """With stderr on systemd's journal stream (JOURNAL_STREAM names it), every line starts with
    its syslog priority, also the configuration errors that stop the start."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    st = os.fstat(a.fileno())
    env = lstest.sanitizer_env(dict(os.environ, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}"))
    d = tmpdir()
    bad = write(os.path.join(d, "bad.conf"), "<source>\n  @type tail\n</source>\n")
    good = write(os.path.join(d, "good.conf"),
                 '<source>\n  @type sample\n  tag t\n  rate 1\n</source>\n<match t>\n  @type null\n'
                 '  bogus_param 1\n</match>\n')
    try:
        for conf, want in ((bad, r"^<3>logship: configuration error: .*bad\.conf"),
                           (good, r"^<4>\[warn\]: .*bogus_param")):
            p = subprocess.run(lstest.WRAP + [LOGSHIP, "-c", conf, "--dry-run"], stderr=a.fileno(),
                               stdout=subprocess.DEVNULL, env=env, timeout=60)
            b.settimeout(10)
            got = b.recv(65536).decode()
            lstest.check_sanitizer(got)
            assert re.search(want, got, re.M), got
            assert not re.search(r"^\d{4}-\d\d-\d\d ", got, re.M), "no timestamps for the journal:\n" + got
        # the same run with stderr elsewhere: fluentd's format, timestamps, no priorities
        p = subprocess.run(lstest.WRAP + [LOGSHIP, "-c", good, "--dry-run"], capture_output=True,
                           text=True, env=env, timeout=60)
        assert re.search(r"^\d{4}-\d\d-\d\d .* \[warn\]: .*bogus_param", p.stderr, re.M) and "<4>" not in p.stderr, p.stderr
    finally:
        a.close()
        b.close()
