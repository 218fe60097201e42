"""A real nginx (Debian's nginx-light) for the tail tests.

Runs nginx in the foreground with a temporary prefix and configuration,
listening on 127.0.0.1:<free port>, writing the default `combined` access log
into a temp dir. Requests go over plain sockets (HTTP/1.0, one per
connection, so each request is logged when its response was sent).
Rotation helpers do what logrotate does: mv + reopen (USR1), copytruncate,
delete + reopen.
"""
import os, shutil, signal, socket, subprocess, time

import lstest

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

CONF = """
daemon off;
master_process on;
worker_processes 1;
user root;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {log} combined;
    client_body_temp_path {dir}/tmp;
    proxy_temp_path {dir}/tmp;
    fastcgi_temp_path {dir}/tmp;
    uwsgi_temp_path {dir}/tmp;
    scgi_temp_path {dir}/tmp;
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 200 "ok\\n"; }}
        location /missing {{ return 404; }}
        location /big {{ return 200 "{big}"; }}
    }}
}}
"""


class Nginx:
    def __init__(self, log_dir=None, log_name="access.log"):
        if not os.path.exists(NGINX):
            raise lstest.Skip("nginx is not installed")
        self.dir = lstest.tmpdir("ls-nginx-")
        os.makedirs(os.path.join(self.dir, "tmp"), exist_ok=True)
        self.log_dir = log_dir or self.dir
        self.log = os.path.join(self.log_dir, log_name)
        self.port = lstest.free_port()
        self.conf = os.path.join(self.dir, "nginx.conf")
        lstest.write(self.conf, CONF.format(dir=self.dir, log=self.log, port=self.port,
                                            big="x" * 1000))
        self.p = None
        self.sent = 0

    def start(self):
        self.p = subprocess.Popen([NGINX, "-p", self.dir, "-c", self.conf],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        lstest.on_cleanup(self.stop)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.p.poll() is not None:
                raise AssertionError("nginx exited: " + self.p.stderr.read().decode(errors="replace"))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError("nginx did not start listening")

    def request(self, path="/", agent="lstest", method="GET", referer=None):
        """One request; returns the status code."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        try:
            head = f"{method} {path} HTTP/1.0\r\nHost: localhost\r\nUser-Agent: {agent}\r\n"
            if referer:
                head += f"Referer: {referer}\r\n"
            s.sendall((head + "\r\n").encode("latin-1"))
            data = b""
            while True:
                b = s.recv(65536)
                if not b:
                    break
                data += b
        finally:
            s.close()
        self.sent += 1
        return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0

    def requests(self, n, path_fmt="/r/{i}", agent_fmt="agent-{i}", start=0):
        """n requests with unique paths; returns the list of (path, agent)."""
        out = []
        for i in range(start, start + n):
            p, a = path_fmt.format(i=i), agent_fmt.format(i=i)
            self.request(p, a)
            out.append((p, a))
        return out

    def lines(self, path=None):
        """Lines in the access log right now (to check the log itself)."""
        try:
            with open(path or self.log, "rb") as f:
                return f.read().decode("latin-1").splitlines()
        except FileNotFoundError:
            return []

    def _master_pid(self):
        with open(os.path.join(self.dir, "nginx.pid")) as f:
            return int(f.read().strip())

    def reopen(self):
        """nginx -s reopen: the workers reopen their logs (USR1 to the master)."""
        os.kill(self._master_pid(), signal.SIGUSR1)
        # the worker reopens asynchronously; wait until the log file exists again
        lstest.wait_until(lambda: os.path.exists(self.log), 10, what="nginx reopened its log")

    def rotate_rename(self, suffix=".1"):
        """logrotate's default (create): mv, then reopen. Returns the rotated path."""
        dst = self.log + suffix
        os.rename(self.log, dst)
        self.reopen()
        return dst

    def rotate_copytruncate(self, suffix=".1"):
        """logrotate copytruncate: copy, then truncate in place (nginx keeps its fd)."""
        dst = self.log + suffix
        shutil.copyfile(self.log, dst)
        with open(self.log, "r+b") as f:
            f.truncate(0)
        return dst

    def rotate_delete(self):
        """delete the log, then reopen: a new file (maybe the same inode number)."""
        os.unlink(self.log)
        self.reopen()

    def stop(self):
        if self.p and self.p.poll() is None:
            self.p.send_signal(signal.SIGQUIT)   # graceful: workers finish, logs flushed
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.p = None
