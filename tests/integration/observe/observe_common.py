"""Shared by the observability tests: a fixture host with one free endpoint, and the real iommud on it.

The desktop-gpu fixture with 0000:00:16.0 (group 5, the HECI controller) unbound: blocking group 5
is one driver_override write, which a fixture tree takes like the kernel does, so a real operation
runs to its end without a kernel.
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

IOMMUD = os.environ.get('IOMMUD')
IOMMUCTL = os.environ.get('IOMMUCTL')
SOURCE_ROOT = os.environ.get('IOMMUD_SOURCE_ROOT', '.')
FREE_GROUP = 5
FREE_DEVICE = '0000:00:16.0'
N_GROUPS = 10


def make_tree(tmp, name='host'):
    root = os.path.join(tmp, name)
    subprocess.run([sys.executable, os.path.join(SOURCE_ROOT, 'tests/fixtures/gen-host.py'),
                    os.path.join(SOURCE_ROOT, 'tests/fixtures/hosts/desktop-gpu.json'), root],
                   check=True, stdout=subprocess.DEVNULL)
    os.unlink(os.path.join(root, 'sys/bus/pci/devices', FREE_DEVICE, 'driver'))
    return root


def free_tcp_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Daemon:
    """iommud on a fixture tree with its own state and runtime directories, in tmp/name-*."""

    def __init__(self, tmp, name, root, *flags, env=None, stderr=None):
        self.tmp, self.name = tmp, name
        self.socket = os.path.join(tmp, name + '.sock')
        self.state = os.path.join(tmp, name + '-state')
        self.run = os.path.join(tmp, name + '-run')
        self.log_path = os.path.join(tmp, name + '.log')
        self.root, self.flags, self.env = root, list(flags), env
        self.stderr = stderr
        self.proc = None

    def start(self, wait=True):
        args = [IOMMUD, '--config=/dev/null', '--root', self.root, '--udev=no', '--rescan-interval=0',
                '--dbus=none', '--libvirt-uri=none', '--state-directory=' + self.state,
                '--runtime-directory=' + self.run, '--policy-directory=' + os.path.join(self.tmp, 'no-policy'),
                '--unix-socket=' + self.socket] + self.flags
        env = dict(os.environ)
        env.update(self.env or {})
        if self.stderr is None:
            log = open(self.log_path, 'a')
            self.proc = subprocess.Popen(args, stdout=log, stderr=log, env=env)
            log.close()
        else:
            self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self.stderr, env=env)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f'iommud {self.name} exited with {self.proc.returncode}: {self.log()}')
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(self.socket)
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f'iommud {self.name} did not start listening: {self.log()}')

    def log(self):
        try:
            with open(self.log_path) as f:
                return f.read()
        except OSError:
            return ''

    def stop(self, timeout=10):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def ctl(self, *args, timeout=30, env=None):
        e = dict(os.environ)
        e.update(env or {})
        return subprocess.run([IOMMUCTL, '--socket', self.socket] + list(args), capture_output=True, text=True,
                              timeout=timeout, env=e)


def tmpdir(prefix):
    return tempfile.mkdtemp(prefix=prefix)


def rmtree(path):
    shutil.rmtree(path, ignore_errors=True)
