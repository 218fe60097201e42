"""The Debian package: build it from the binary under test, install it with
dpkg on this machine, check what it put where (binary, configuration, unit,
logrotate, man page, user, directories), verify the systemd unit, run the
installed binary on the installed configuration (as root and as the
service's user), then purge it and check it left nothing behind.

Needs root and dpkg; skips otherwise, and skips when a logship package is
already installed (it would not be ours to remove).
"""
import gzip, grp, os, pwd, re, shutil, signal, stat, subprocess, time
import lstest
from lstest import ROOT, LOGSHIP, tmpdir, wait_until

PKG = "logship"

def sh(*args, check=True, **kw):
    p = subprocess.run(list(args), capture_output=True, text=True, timeout=300, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(args)} -> {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p

def installed():
    p = sh("dpkg-query", "-W", "-f=${Status}", PKG, check=False)
    return p.returncode == 0 and "install ok installed" in p.stdout

def user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False

def group_exists(name):
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False

def unit_settings(text):
    d = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        k, _, v = line.partition("=")
        d.setdefault(k, []).append(v)
    return d

def test_deb_builds_installs_runs_and_purges():
    if os.geteuid() != 0:
        raise lstest.Skip("needs root (dpkg -i)")
    for tool in ("dpkg", "dpkg-deb"):
        if not shutil.which(tool):
            raise lstest.Skip(f"{tool} missing")
    if installed():
        raise lstest.Skip("a logship package is already installed on this machine")
    had_user, had_group = user_exists("logship"), group_exists("logship")

    out = tmpdir()
    p = sh("sh", os.path.join(ROOT, "packaging", "build-deb.sh"), LOGSHIP, out)
    deb = p.stdout.strip().splitlines()[-1]
    assert os.path.isfile(deb) and deb.endswith(".deb"), p.stdout
    info = sh("dpkg-deb", "-f", deb).stdout
    version = sh(LOGSHIP, "--version").stdout.split()[1]
    assert re.search(rf"^Package: logship$", info, re.M) and re.search(rf"^Version: {re.escape(version)}$", info, re.M), info
    assert re.search(r"^Depends: .*libc6", info, re.M), "Depends should come from the linked libraries:\n" + info
    for dep in ("libmariadb3", "libmicrohttpd12", "libzstd1", "liblzma5"):   # dlopen()ed: dpkg-shlibdeps cannot see them
        assert re.search(rf"^Depends: .*\b{dep} ", info, re.M), f"Depends lacks {dep}:\n" + info
    contents = sh("dpkg-deb", "-c", deb).stdout
    for path in ("./usr/bin/logship", "./usr/lib/logship/logship-http", "./etc/logship/logship.conf", "./lib/systemd/system/logship.service",
                 "./etc/logrotate.d/logship", "./usr/share/man/man1/logship.1.gz",
                 "./usr/share/doc/logship/README.md", "./usr/share/doc/logship/copyright",
                 "./usr/share/doc/logship/examples/"):
        assert re.search(rf"\s{re.escape(path)}$", contents, re.M), f"{path} not in the package:\n{contents}"
    assert " root/root " in contents and "1000/" not in contents, "files must be owned by root"
    ctl = tmpdir()
    sh("dpkg-deb", "-e", deb, ctl)
    assert open(os.path.join(ctl, "conffiles")).read().split() == ["/etc/logship/logship.conf",
                                                                   "/etc/logrotate.d/logship"]
    for s in ("postinst", "prerm", "postrm"):
        sh("sh", "-n", os.path.join(ctl, s))   # syntax

    try:
        sh("dpkg", "-i", deb)
        assert installed()
        # files and modes
        assert os.access("/usr/bin/logship", os.X_OK)
        # the installed logship finds its HTTP helper in /usr/lib/logship (out_s3 checks at start)
        s3conf = os.path.join(tmpdir(), "s3.conf")
        with open(s3conf, "w") as f:
            f.write("<source>\n  @type dummy\n  tag t\n</source>\n<match t>\n  @type s3\n"
                    "  s3_bucket b\n  s3_region us-east-1\n  aws_key_id k\n  aws_sec_key s\n</match>\n")
        os.chmod(s3conf, 0o600)
        p = sh("/usr/bin/logship", "--dry-run", "-c", s3conf, check=False, env=dict(os.environ, LOGSHIP_HTTP_HELPER=""))
        assert p.returncode == 0, p.stderr
        p = sh("/usr/bin/logship", "--dry-run", "-c", s3conf, check=False,
               env=dict(os.environ, LOGSHIP_HTTP_HELPER="/nonexistent/logship-http"))
        assert p.returncode != 0 and "LOGSHIP_HTTP_HELPER" in p.stderr, p.stderr
        st = os.stat("/etc/logship/logship.conf")
        assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_uid == 0, oct(st.st_mode)
        assert grp.getgrgid(st.st_gid).gr_name == "logship"
        man = gzip.decompress(open("/usr/share/man/man1/logship.1.gz", "rb").read()).decode()
        assert man.startswith(".\\\"") and ".TH LOGSHIP 1" in man
        for sec in ("SYNOPSIS", "OPTIONS", "SIGNALS", "FILES", "EXAMPLES"):
            assert f".SH {sec}" in man, sec
        if shutil.which("groff"):
            g = subprocess.run(["groff", "-man", "-ww", "-z"], input=man, capture_output=True, text=True)
            assert g.returncode == 0 and not g.stderr.strip(), g.stderr
        # the user and its directories
        u = pwd.getpwnam("logship")
        assert u.pw_uid < 1000 and u.pw_shell.endswith("nologin"), u
        assert "logship" in grp.getgrnam("adm").gr_mem, "logship must be in group adm (to read /var/log/nginx)"
        for d, group in (("/var/lib/logship", "logship"), ("/var/log/logship", "adm")):
            st = os.stat(d)
            assert st.st_uid == u.pw_uid and grp.getgrgid(st.st_gid).gr_name == group, d
            assert stat.S_IMODE(st.st_mode) & 0o007 == 0, f"{d} must not be world-accessible"
        # the unit
        unit = open("/lib/systemd/system/logship.service").read()
        s = unit_settings(unit)
        assert s["User"] == ["logship"] and s["Group"] == ["adm"]
        for k, v in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("ProtectHome", "yes"),
                     ("PrivateTmp", "yes"), ("ProtectKernelTunables", "yes"),
                     ("ProtectKernelModules", "yes"), ("Restart", "on-failure"),
                     ("CapabilityBoundingSet", "")):
            assert s.get(k) == [v], (k, s.get(k))
        assert set(s["ReadWritePaths"][0].split()) == {"/var/lib/logship", "/var/log/logship"}
        assert set(s["RestrictAddressFamilies"][0].split()) == {"AF_UNIX", "AF_INET", "AF_INET6"}
        assert s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
        assert s["ExecStart"][0].startswith("/usr/bin/logship ")
        if shutil.which("systemd-analyze"):
            v = sh("systemd-analyze", "verify", "/lib/systemd/system/logship.service", check=False)
            noise = [l for l in (v.stdout + v.stderr).splitlines() if l.strip()]
            assert v.returncode == 0 and not noise, "systemd-analyze verify:\n" + "\n".join(noise)
        # logrotate accepts its snippet
        if shutil.which("logrotate"):
            lr = sh("logrotate", "-d", "/etc/logrotate.d/logship", check=False)
            assert lr.returncode == 0 and "error" not in lr.stderr.lower(), lr.stderr

        # the installed binary accepts the installed configuration, as root and as the service runs it
        env = lstest.sanitizer_env()
        p = subprocess.run(["/usr/bin/logship", "-c", "/etc/logship/logship.conf", "--dry-run"],
                           capture_output=True, text=True, env=env, timeout=60)
        lstest.check_sanitizer(p.stderr)
        assert p.returncode == 0, p.stderr
        if shutil.which("setpriv"):
            # the identity the unit gives it (User=logship, Group=adm, SupplementaryGroups=logship);
            # setpriv execs, so signals reach logship itself
            as_service = ["setpriv", "--reuid=logship", "--regid=adm", "--groups=adm,logship", "--"]
            p = subprocess.run(as_service + ["/usr/bin/logship", "-c", "/etc/logship/logship.conf",
                                             "--dry-run"], capture_output=True, text=True, env=env,
                               timeout=60, cwd="/")
            assert p.returncode == 0, "dry-run as the service user failed:\n" + p.stderr
            # a short real run, logging where the unit logs
            log = "/var/log/logship/logship.log"
            a = subprocess.Popen(as_service + ["/usr/bin/logship", "-c", "/etc/logship/logship.conf",
                                               "-o", log], env=env, cwd="/",
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            try:
                wait_until(lambda: os.path.exists(log) and "logship started" in open(log).read(),
                           timeout=20, what="the packaged configuration to start")
            finally:
                if a.poll() is None:
                    os.kill(a.pid, signal.SIGTERM)
                rc = a.wait(60)
            text = open(log).read()
            lstest.check_sanitizer(text)
            assert rc == 0 and "error" not in text.lower(), text
            assert os.path.isdir("/var/lib/logship/buffer"), "the file buffer lives in /var/lib/logship"
    finally:
        sh("dpkg", "--purge", PKG, check=False)
        if not had_user and user_exists("logship"):
            sh("userdel", "logship", check=False)
        if not had_group and group_exists("logship"):
            sh("groupdel", "logship", check=False)
    assert not installed()
    for path in ("/usr/bin/logship", "/etc/logship", "/lib/systemd/system/logship.service",
                 "/etc/logrotate.d/logship", "/var/lib/logship", "/var/log/logship",
                 "/usr/share/man/man1/logship.1.gz"):
        assert not os.path.exists(path), f"{path} left behind by purge"
