"""TAP output for the Python tests: numbered ok / not ok lines, the detail of a failure as comments."""
import subprocess
import sys


class Tap:
    def __init__(self, detail_head=False):
        """A failure's detail is shown as its last 40 lines (a log), or its first 40 (a sorted diff)."""
        self.count = 0
        self.failed = 0
        self.detail_head = detail_head

    def check(self, ok, what, detail=""):
        self.count += 1
        self.failed += not ok
        print(f"{'ok' if ok else 'not ok'} {self.count} - {what}")
        if not ok and detail:
            lines = str(detail).splitlines()
            for line in lines[:40] if self.detail_head else lines[-40:]:
                print(f"#   {line}")
        sys.stdout.flush()
        return ok

    def skip(self, what, why):
        self.count += 1
        print(f"ok {self.count} - {what} # SKIP {why}")
        sys.stdout.flush()

    @staticmethod
    def note(text):
        for line in str(text).splitlines():
            print(f"# {line}")
        sys.stdout.flush()


def asan_build(executable):
    """An AddressSanitizer build: its xdr interceptors crash libvirt's RPC client (Debian 12's glibc
    has no sunrpc; libvirt uses libtirpc), llvm/llvm-project#81470, so what talks to a libvirtd over
    RPC runs only in the other builds."""
    r = subprocess.run(["ldd", executable], capture_output=True, text=True)
    return "libasan" in r.stdout or "libclang_rt.asan" in r.stdout
