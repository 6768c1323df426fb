#!/usr/bin/env python3
"""The install as a packager and a user meet it. Prints TAP.

    test_package.py layout SOURCE_DIR BUILD_DIR WORK_DIR
        meson install into a DESTDIR with -Dprefix=/usr gives exactly layout.txt (the system
        directories asked from pkg-config here, independently of meson.build); for that prefix and
        for BUILD_DIR's own (the default /usr/local in a developer's build) the paths inside the
        unit, the socket unit and the D-Bus activation file name files of the same install, and the
        daemon's built-in defaults (settings file, policy directory, socket) agree with them.
    test_package.py deb SOURCE_DIR WORK_DIR
        tests/package/build-deb.sh builds iommud_<version>_<arch>.deb; it holds layout.txt as
        Debian ships it (man pages compressed, changelog and copyright, the hook's link in
        /etc/libvirt/hooks/qemu.d), its conffiles are /etc/iommud/iommud.conf only.
    test_package.py keys SOURCE_DIR IOMMUD
        every setting `iommud --help` lists ([Section] Key= and its flag) is in iommud.conf(5)
        under its section, and in systemd/iommud.conf.example under its section.
    test_package.py lintian WORK_DIR
        lintian on what the deb test built: no error and no warning (overrides carry their reason
        in debian/iommud.lintian-overrides).
"""
import glob
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import tap  # noqa: E402  tests/tap.py

# meson option -> (pkg-config package, variable, suffix): the same question meson.build asks.
SYSTEM_DIRS = {
    'systemdsystemunitdir': ('systemd', 'systemdsystemunitdir', ''),
    'sysusersdir': ('systemd', 'sysusersdir', ''),
    'catalogdir': ('systemd', 'catalogdir', ''),
    'dbus_system_services_dir': ('dbus-1', 'system_bus_services_dir', ''),
    'dbus_system_policy_dir': ('dbus-1', 'datadir', 'dbus-1/system.d'),
    'polkit_actions_dir': ('polkit-gobject-1', 'policydir', ''),
    'bash_completions_dir': ('bash-completion', 'completionsdir', ''),
}

T = tap.Tap()
check = T.check


def run(argv, **kwargs):
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, **kwargs)


def system_dir(option):
    package, variable, suffix = SYSTEM_DIRS[option]
    out = run(['pkg-config', f'--variable={variable}', package])
    if out.returncode != 0 or not out.stdout.strip():
        raise SystemExit(f'Bail out! pkg-config knows no {variable} of {package}')
    return os.path.join(out.stdout.strip(), suffix) if suffix else out.stdout.strip()


def expected_layout():
    paths = []
    for line in (HERE / 'layout.txt').read_text().splitlines():
        if line and not line.startswith('#'):
            paths.append(re.sub(r'@(\w+)@', lambda m: system_dir(m.group(1)), line))
    return sorted(paths)


def installed(root):
    """Files and links below root, and the directories that are empty, as absolute paths."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = '/' + os.path.relpath(dirpath, root)
        for name in filenames:
            found.append(os.path.join(rel, name))
        for name in dirnames:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                found.append(os.path.join(rel, name))
            elif not os.listdir(path):
                found.append(os.path.join(rel, name) + '/')
    return sorted(p.replace('/./', '/') for p in found)


def unit_value(path, key):
    for line in Path(path).read_text().splitlines():
        if line.startswith(key + '='):
            return line.split('=', 1)[1].split()[0]
    return None


def help_default(iommud, pattern):
    """A default that `iommud --help` prints, e.g. the settings file."""
    out = run([iommud, '--help']).stdout
    m = re.search(pattern, out)
    return m.group(1) if m else None


def check_consistent(root, prefix, label):
    """The paths inside the installed units and activation file, and the daemon's defaults, name
    files of this same install."""
    unit = root / system_dir('systemdsystemunitdir').lstrip('/') / 'iommud.service'
    socket_unit = unit.with_name('iommud.socket')
    activation = root / system_dir('dbus_system_services_dir').lstrip('/') / 'org.iommud1.service'
    if not check(unit.exists() and socket_unit.exists() and activation.exists(),
                 f'{label}: the units and the activation file are where systemd and dbus-daemon look'):
        return
    exec_start = unit_value(unit, 'ExecStart')
    check(exec_start == f'{prefix}/sbin/iommud' and (root / exec_start.lstrip('/')).is_file(),
          f'{label}: ExecStart={exec_start} is the installed daemon')
    exec_dbus = unit_value(activation, 'Exec')
    check(exec_dbus == exec_start, f'{label}: the D-Bus activation file starts the same binary ({exec_dbus})')
    iommud = root / exec_start.lstrip('/')
    sysconfdir = '/etc' if prefix == '/usr' else f'{prefix}/etc'
    config = help_default(iommud, r'--config FILE +Settings file \(default ([^)]*)\)')
    check(config == f'{sysconfdir}/iommud/iommud.conf' and (root / config.lstrip('/')).is_file(),
          f'{label}: the daemon reads the installed settings file ({config})')
    policy = help_default(iommud, r'PolicyDirectory=:.*\(default: ([^)]*)\)')
    check(policy == f'{sysconfdir}/iommud/policy.d' and (root / policy.lstrip('/')).is_dir(),
          f'{label}: its policy directory is the installed one ({policy})')
    sock = help_default(iommud, r'Unix=:.*\(default: ([^)]*)\)')
    check(sock == unit_value(socket_unit, 'ListenStream'),
          f'{label}: iommud.socket listens where the daemon and its clients look ({sock})')
    hook = root / f'{prefix.lstrip("/")}/libexec/iommud/iommud-libvirt-hook'
    check(hook.is_file() and not (root / 'etc/libvirt').exists(),
          f'{label}: the libvirt hook is in libexecdir, nothing is installed into /etc/libvirt')


def layout(source, build, work):
    work = Path(work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    usr_build, usr_root = work / 'build-prefix-usr', work / 'root-prefix-usr'
    for argv in (['meson', 'setup', usr_build, source, '-Dprefix=/usr', '-Dtests=disabled', '-Dman=enabled'],
                 ['ninja', '-C', usr_build],
                 ['meson', 'install', '-C', usr_build, '--no-rebuild', '--quiet', '--destdir', usr_root]):
        out = run(argv)
        if out.returncode != 0:
            print(f'Bail out! {" ".join(map(str, argv))} failed: {(out.stdout + out.stderr)[-2000:]}')
            return 1
    want, have = expected_layout(), installed(usr_root)
    check(have == want, 'meson install -Dprefix=/usr installs exactly layout.txt',
          '\n'.join([f'missing: {p}' for p in want if p not in have] +
                    [f'unexpected: {p}' for p in have if p not in want]))
    check_consistent(usr_root, '/usr', 'prefix /usr')

    prefix = run(['meson', 'introspect', '--buildoptions', build]).stdout
    prefix = re.search(r'"name": "prefix", "value": "([^"]*)"', prefix)
    own_root = work / 'root-build'
    out = run(['meson', 'install', '-C', build, '--no-rebuild', '--quiet', '--destdir', own_root])
    if check(prefix is not None and out.returncode == 0, f'meson install of {build} into a DESTDIR',
             out.stdout + out.stderr):
        check_consistent(own_root, prefix.group(1), f'prefix {prefix.group(1)}')
    shutil.rmtree(work)
    return 0


def deb_contents(deb):
    """(paths, symlinks) of a .deb: files and links, and the directories it ships empty."""
    out = run(['dpkg-deb', '--contents', deb]).stdout.splitlines()
    entries = []
    for line in out:
        fields = line.split(None, 5)
        mode, path = fields[0], fields[5].split(' -> ')[0]
        entries.append((mode, '/' + path.lstrip('./').rstrip('/') if path != './' else '/'))
    dirs = {p for m, p in entries if m.startswith('d')}
    paths = [p for m, p in entries if not m.startswith('d')]
    paths += [d + '/' for d in dirs if d != '/' and not any(p.startswith(d + '/') for _, p in entries)]
    return sorted(paths)


def deb(source, work):
    work = Path(work)
    out = run([HERE / 'build-deb.sh', source, work])
    if not check(out.returncode == 0, 'dpkg-buildpackage -b -us -uc builds the package', out.stdout + out.stderr):
        return 1
    T.note(out.stdout.strip())
    debs = sorted(glob.glob(str(work / 'iommud_*.deb')))
    if not check(len(debs) == 1, f'one iommud_<version>_<arch>.deb: {[os.path.basename(d) for d in debs]}'):
        return 1
    want = []
    for path in expected_layout():
        want.append(path + '.gz' if '/share/man/' in path else path)
    want += ['/usr/share/doc/iommud/changelog.gz', '/usr/share/doc/iommud/copyright',
             '/etc/libvirt/hooks/qemu.d/iommud']
    have = deb_contents(debs[0])
    check(have == sorted(want), 'the package holds layout.txt as Debian ships it, and the hook link',
          '\n'.join([f'missing: {p}' for p in sorted(want) if p not in have] +
                    [f'unexpected: {p}' for p in have if p not in want]))
    link = run(['dpkg-deb', '--contents', debs[0]]).stdout
    check('./etc/libvirt/hooks/qemu.d/iommud -> /usr/libexec/iommud/iommud-libvirt-hook' in link,
          'libvirt finds the hook: /etc/libvirt/hooks/qemu.d/iommud links to it')
    conffiles = run(['dpkg-deb', '--info', debs[0], 'conffiles']).stdout.split()
    check(conffiles == ['/etc/iommud/iommud.conf'], f'conffiles: {conffiles}')
    postinst = run(['dpkg-deb', '--info', debs[0], 'postinst']).stdout
    check('systemd-sysusers' in postinst and postinst.index('systemd-sysusers') < postinst.index('iommud.service'),
          'postinst creates the user and the group (systemd-sysusers) before it starts iommud.service', postinst)
    return 0


def lintian(work):
    changes = sorted(glob.glob(os.path.join(work, 'iommud_*.changes')))
    if len(changes) != 1:
        print(f'Bail out! no iommud_*.changes in {work}: the deb test builds it')
        return 1
    # --fail-on warning: an overridden tag does not count, an unexplained one does.
    out = run(['lintian', '--fail-on', 'error,warning', '--display-info', '--show-overrides', changes[0]])
    check(out.returncode == 0, 'lintian: no errors, no warnings without a reason', out.stdout + out.stderr)
    for line in (out.stdout + out.stderr).splitlines():
        T.note(line)
    return 0


def sections(text, header):
    """{section: its text} of a file whose section headers match header (a regex with a group)."""
    found, current = {}, None
    for line in text.splitlines():
        m = re.match(header, line)
        if m:
            current = m.group(1)
            found.setdefault(current, '')
        elif current:
            found[current] += line + '\n'
    return found


def keys(source, iommud):
    settings = re.findall(r'--([a-z0-9-]+)=\S+ +\[(\w+)\] (\w+)=:', run([iommud, '--help']).stdout)
    check(len(settings) > 10, f'iommud --help lists {len(settings)} settings')
    man = sections((Path(source) / 'docs/iommud.conf.5.scd').read_text(), r'^# \[(\w+)\] SECTION$')
    example = sections((Path(source) / 'systemd/iommud.conf.example').read_text(), r'^\[(\w+)\]$')
    missing_man = [f'[{sec}] {key}= (--{flag})' for flag, sec, key in settings
                   if f'*{key}=*' not in man.get(sec, '') or f'*--{flag}*' not in man.get(sec, '')]
    missing_example = [f'[{sec}] {key}=' for _, sec, key in settings
                       if not re.search(rf'^# {key}=', example.get(sec, ''), re.M)]
    check(not missing_man, 'iommud.conf(5) documents every setting under its section, with its flag',
          '\n'.join(missing_man))
    check(not missing_example, 'systemd/iommud.conf.example has every setting under its section',
          '\n'.join(missing_example))
    return 0


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == 'layout':
        rc = layout(*args)
    elif mode == 'deb':
        rc = deb(*args)
    elif mode == 'keys':
        rc = keys(*args)
    elif mode == 'lintian':
        rc = lintian(*args)
    else:
        raise SystemExit(f'unknown mode {mode}')
    failed = T.plan()
    return 1 if rc or failed else 0


if __name__ == '__main__':
    sys.exit(main())
