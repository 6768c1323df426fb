/* The floor for reading a host: the files `iommud --dump` reads for every PCI device and IOMMU group,
 * opened relative to their directory and read once, with nothing parsed, named or printed but a
 * checksum. bench-inventory.py times iommud against it.
 *
 * Usage: bare-reader ROOT */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static uint64_t checksum;

static void sum(const char *buf, ssize_t n) {
        for (ssize_t i = 0; i < n; i++)
                checksum = checksum * 31 + (uint8_t)buf[i];
}

static void read_file(int dir_fd, const char *name) {
        char buf[4096];
        ssize_t n;
        int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC);

        if (fd < 0)
                return;
        n = read(fd, buf, sizeof(buf));
        if (n > 0)
                sum(buf, n);
        close(fd);
}

static void read_link(int dir_fd, const char *name) {
        char buf[4096];
        ssize_t n = readlinkat(dir_fd, name, buf, sizeof(buf));

        if (n > 0)
                sum(buf, n);
}

/* Lists a directory with getdents64, calling f for each name; returns the number of entries. */
static int list(int fd, void (*f)(const char *name, void *userdata), void *userdata) {
        char buf[8192] __attribute__((aligned(8)));
        int n = 0;
        long k;

        while ((k = syscall(SYS_getdents64, fd, buf, sizeof(buf))) > 0)
                for (long off = 0; off < k;) {
                        const struct dirent64 *de = (const struct dirent64 *)(buf + off);

                        off += de->d_reclen;
                        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                                continue;
                        if (f)
                                f(de->d_name, userdata);
                        n++;
                }
        return n;
}

static void on_name(const char *name, void *userdata) {
        sum(name, (ssize_t)strlen(name));
}

typedef struct Ctx {
        int root_fd;
        int devices_fd;
} Ctx;

static void on_device(const char *name, void *userdata) {
        static const char *const files[] = { "vendor", "device", "subsystem_vendor", "subsystem_device", "class",
                                             "revision", "driver_override", "numa_node", "reset_method",
                                             "modalias" };
        static const char *const links[] = { "driver", "iommu_group", "iommu" };
        Ctx *c = userdata;
        char buf[4096];
        int fd;

        read_link(c->devices_fd, name);
        snprintf(buf, sizeof(buf), "sys/bus/pci/devices/%s", name);
        fd = openat(c->root_fd, buf, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return;
        list(fd, on_name, NULL);
        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
                read_file(fd, files[i]);
        for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++)
                read_link(fd, links[i]);
        read_file(fd, "config");
        close(fd);
}

static void on_group(const char *name, void *userdata) {
        Ctx *c = userdata;
        char buf[256];
        struct stat st;
        int fd, members;

        snprintf(buf, sizeof(buf), "sys/kernel/iommu_groups/%s", name);
        fd = openat(c->root_fd, buf, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return;
        members = openat(fd, "devices", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (members >= 0) {
                list(members, on_name, NULL);
                close(members);
        }
        read_file(fd, "type");
        if (fstatat(fd, "type", &st, AT_SYMLINK_NOFOLLOW) == 0)
                checksum += st.st_mode;
        read_file(fd, "reserved_regions");
        close(fd);
}

int main(int argc, char **argv) {
        Ctx c;
        int fd;

        if (argc != 2) {
                fprintf(stderr, "usage: bare-reader ROOT\n");
                return 2;
        }
        c.root_fd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (c.root_fd < 0) {
                perror(argv[1]);
                return 1;
        }
        c.devices_fd = openat(c.root_fd, "sys/bus/pci/devices", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (c.devices_fd < 0) {
                perror("sys/bus/pci/devices");
                return 1;
        }
        list(c.devices_fd, on_device, &c);
        fd = openat(c.root_fd, "sys/kernel/iommu_groups", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0) {
                list(fd, on_group, &c);
                close(fd);
        }
        printf("%016llx\n", (unsigned long long)checksum);
        return 0;
}
