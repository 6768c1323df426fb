"""Booting a guest with the host's systemd as PID 1 (topology key `init: systemd`).

The initramfs (kernel.build_initramfs with guest/init-systemd) mounts the host root over 9p as
the read-only lower layer of an overlay with a tmpfs upper layer, so the guest can install
packages, add users and enable units without touching the host. The guest kernel's own modules
are bind-mounted at /usr/lib/modules, so udev and modprobe load drivers the usual way. Boot ends
with the units in guest/systemd/: once `systemctl is-system-running --wait` returns, the
scenarios run in vmtest-scenarios.service and the guest powers off.
"""

import subprocess
from pathlib import Path

import kernel

# In the initramfs: enough to mount the overlay of the host root. Everything else is left to
# udev and modprobe in the booted system.
INITRAMFS_MODULES = ['virtio_pci', '9pnet_virtio', '9p', 'overlay']

# A guest running systemd, dbus, polkitd, libvirtd and a nested QEMU.
MEMORY_MB = 2048


def prepare_modules(kern):
    """The guest kernel's module tree with the indexes modprobe needs (Debian's package ships
    none: its postinst runs depmod). Written once into the kernel cache; depmod renames its
    outputs into place, so a concurrent run sees the old or the new index, never half of one."""
    if not (kern.moddir / 'modules.dep.bin').exists():
        try:
            subprocess.run(['depmod', '-b', str(kern.root), kern.release], check=True,
                           capture_output=True, text=True)
        except FileNotFoundError as e:
            raise kernel.SetupError('depmod is not installed (apt-get install kmod)') from e
        except subprocess.CalledProcessError as e:
            raise kernel.SetupError(f'depmod for {kern.release} failed: {e.stderr.strip()}') from e
    return kern.root / 'lib/modules'


def build_initramfs(kern, topo_modules, vmdir, out):
    kernel.build_initramfs(kern, topo_modules + INITRAMFS_MODULES, vmdir / 'guest/init-systemd', out)


def params(kern):
    """Values for params.sh that guest/init-systemd reads before it switches root."""
    return {'GUEST_MODULES': prepare_modules(kern)}


def kernel_cmdline():
    # The host's default target may be graphical; the console shows unit status for debugging.
    return ['systemd.unit=multi-user.target', 'systemd.show_status=1']


def find_deb(path):
    """The iommud .deb: path itself, or the one iommud_*.deb in the folder path."""
    path = Path(path)
    debs = sorted(path.glob('iommud_*.deb')) if path.is_dir() else [path] if path.is_file() else []
    if len(debs) != 1:
        raise kernel.SetupError(f'expected one iommud .deb at {path}, found {len(debs)}: build it first '
                                '(meson test -C BUILD deb, or tests/package/build-deb.sh SOURCE DIR)')
    return debs[0].resolve()
