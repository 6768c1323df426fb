"""Debian kernels for the VM tests: download, unpack, and a busybox initramfs."""

import lzma
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

# Kernel series -> Debian 12 metapackage whose dependency names the current image package.
METAPACKAGES = {
    '6.1': 'linux-image-amd64',
    '6.12': 'linux-image-6.12-amd64',
}

# Loaded in every guest, after the topology's own modules: the 9p root, VFIO, and drivers
# for the emulated devices.
COMMON_MODULES = [
    'virtio_pci', '9pnet_virtio', '9p',
    'vfio', 'vfio_iommu_type1', 'vfio_pci',
    'e1000e', 'e1000', 'nvme', 'ahci', 'lpc_ich', 'i2c_i801', 'virtio_net',
]

BUSYBOX = Path('/bin/busybox')


class SetupError(Exception):
    """The test bed cannot be set up (missing package, tool or kernel)."""


def run(argv, **kwargs):
    try:
        return subprocess.run(argv, check=True, capture_output=True, text=True, **kwargs).stdout
    except FileNotFoundError as e:
        raise SetupError(f'{argv[0]} is not installed') from e
    except subprocess.CalledProcessError as e:
        raise SetupError(f'{" ".join(map(str, argv))} failed: {e.stderr.strip()}') from e


def image_package(series):
    """Name of the linux-image package for a kernel series, from apt's current lists."""
    meta = METAPACKAGES.get(series)
    if meta is None:
        raise SetupError(f'unknown kernel series {series!r}; known: {", ".join(METAPACKAGES)}')
    for line in run(['apt-cache', 'depends', meta]).splitlines():
        dep = line.strip().removeprefix('Depends: ')
        if dep != line.strip() and dep.startswith(f'linux-image-{series}.'):
            return dep
    raise SetupError(f'apt-cache depends {meta} names no linux-image-{series}.* package')


class Kernel:
    """An unpacked Debian kernel package: vmlinuz and its modules."""

    def __init__(self, root):
        self.root = Path(root)
        self.vmlinuz = next(self.root.glob('boot/vmlinuz-*'))
        self.release = self.vmlinuz.name.removeprefix('vmlinuz-')
        self.moddir = self.root / 'lib/modules' / self.release
        self.files = {}
        for path in self.moddir.rglob('*.ko*'):
            self.files[module_name(path.name.split('.ko')[0])] = path
        self.builtin = {
            module_name(Path(line.strip()).name.split('.ko')[0])
            for line in (self.moddir / 'modules.builtin').read_text().splitlines()
        }

    def depends(self, name):
        deps = run(['modinfo', '-F', 'depends', self.files[name]]).strip()
        return [module_name(d) for d in deps.split(',') if d]

    def load_order(self, wanted):
        """Module files to insmod, dependencies first; built-in modules are left out."""
        order, seen = [], set()

        def visit(name):
            name = module_name(name)
            if name in seen:
                return
            seen.add(name)
            if name in self.builtin:
                return
            if name not in self.files:
                raise SetupError(f'module {name} is neither built into {self.release} nor shipped')
            for dep in self.depends(name):
                visit(dep)
            order.append(self.files[name])

        for name in wanted:
            visit(name)
        return order


def module_name(name):
    return name.replace('-', '_')


def fetch(series, cache):
    """Download and unpack the current kernel of a series into the cache (once)."""
    package = image_package(series)
    dest = Path(cache) / package
    if (dest / 'boot').is_dir():
        return Kernel(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        run(['apt-get', 'download', package], cwd=tmp)
        deb = next(Path(tmp).glob('*.deb'))
        run(['dpkg', '-x', deb, Path(tmp) / 'root'])
        try:
            os.rename(Path(tmp) / 'root', dest)
        except OSError:
            if not (dest / 'boot').is_dir():  # not merely another run that got there first
                raise
    return Kernel(dest)


def build_initramfs(kernel, modules, init_script, out):
    """Write a newc cpio: static busybox, /init, and the modules (uncompressed) in load order."""
    if not BUSYBOX.is_file():
        raise SetupError(f'{BUSYBOX} is missing (apt-get install busybox-static)')
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp)
        (stage / 'bin').mkdir()
        shutil.copy(BUSYBOX, stage / 'bin/busybox')
        shutil.copy(init_script, stage / 'init')
        (stage / 'init').chmod(0o755)
        (stage / 'modules').mkdir()
        for i, path in enumerate(kernel.load_order(modules)):
            data = path.read_bytes()
            if path.name.endswith('.xz'):
                data = lzma.decompress(data)
            (stage / f'modules/{i:02d}-{path.name.split(".ko")[0]}.ko').write_bytes(data)
        names = sorted(str(p.relative_to(stage)) for p in stage.rglob('*'))
        with open(out, 'wb') as f:
            try:
                subprocess.run(['cpio', '--quiet', '-o', '-H', 'newc'], cwd=stage, check=True,
                               input='\n'.join(names).encode(), stdout=f)
            except FileNotFoundError as e:
                raise SetupError('cpio is not installed') from e
