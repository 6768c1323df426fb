/* Host-wide IOMMU facts: kernel release, command line, whether an IOMMU is on (and why not), VFIO state. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "inventory.h"
#include "macro.h"
#include "parse.h"
#include "roots.h"
#include "string-util.h"
#include "strv.h"

static const char *const domain_type_table[_DOMAIN_TYPE_MAX] = {
        [DOMAIN_TYPE_IDENTITY] = "identity",   [DOMAIN_TYPE_DMA] = "DMA",
        [DOMAIN_TYPE_DMA_FQ] = "DMA-FQ",       [DOMAIN_TYPE_BLOCKED] = "blocked",
        [DOMAIN_TYPE_UNMANAGED] = "unmanaged", [DOMAIN_TYPE_KERNEL_UNKNOWN] = "unknown",
};

const char *domain_type_to_string(DomainType t) {
        if ((unsigned)t >= _DOMAIN_TYPE_MAX)
                return NULL;
        return domain_type_table[t];
}

DomainType domain_type_from_string(const char *s) {
        if (!s)
                return DOMAIN_TYPE_UNKNOWN;
        for (unsigned t = 0; t < _DOMAIN_TYPE_MAX; t++)
                if (domain_type_table[t] && strcmp(domain_type_table[t], s) == 0)
                        return (DomainType)t;
        return DOMAIN_TYPE_UNKNOWN;
}

/* ---- kernel command line ------------------------------------------------------------------- */

typedef struct KernelArg {
        const char *key;   /* points into the caller's buffer */
        const char *value; /* NULL for arguments without '=' */
} KernelArg;

/* One argument the way the kernel's next_arg() (lib/cmdline.c, kernel/params.c) cuts it: blanks separate
 * outside double quotes, and a quote opening the argument or its value is dropped with the final quote.
 * Modifies args in place; returns where the next argument starts. */
static char *cmdline_next_arg(char *args, const char **ret_key, const char **ret_value) {
        size_t i, equals = 0;
        bool in_quote = false, quoted = false;
        char *next;

        if (*args == '"') {
                args++;
                in_quote = quoted = true;
        }
        for (i = 0; args[i]; i++) {
                if (isspace((unsigned char)args[i]) && !in_quote)
                        break;
                /* Like the kernel, an '=' in the first position does not split key and value. */
                if (equals == 0 && args[i] == '=')
                        equals = i;
                if (args[i] == '"')
                        in_quote = !in_quote;
        }

        *ret_key = args;
        *ret_value = NULL;
        if (equals > 0) {
                char *value = args + equals + 1;

                args[equals] = 0;
                if (*value == '"') {
                        value++;
                        if (args[i - 1] == '"')
                                args[i - 1] = 0;
                }
                *ret_value = value;
        }
        if (quoted && i > 0 && args[i - 1] == '"')
                args[i - 1] = 0;

        next = args + i;
        if (*next) {
                *next = 0;
                next++;
        }
        while (isspace((unsigned char)*next))
                next++;
        return next;
}

/* Splits a private copy of the command line into arguments, in order; "--" ends the kernel's part. */
static int cmdline_split(char *buf, KernelArg **ret, size_t *ret_n) {
        _cleanup_(freep) KernelArg *args = NULL;
        size_t n = 0;
        char *p = buf;

        while (isspace((unsigned char)*p))
                p++;
        while (*p) {
                const char *key, *value;
                KernelArg *a;

                p = cmdline_next_arg(p, &key, &value);
                if (!value && strcmp(key, "--") == 0)
                        break;
                a = array_append(&args, &n, sizeof(KernelArg));
                if (!a)
                        return -ENOMEM;
                a->key = key;
                a->value = value;
        }

        *ret = TAKE_PTR(args);
        *ret_n = n;
        return 0;
}

/* The booleans kstrtobool() accepts on every kernel from 5.10 on: y/n, 1/0, on/off (first letters). */
static int kernel_parse_bool(const char *s, bool *ret) {
        if (!s)
                return -EINVAL;
        switch (s[0]) {
        case 'y':
        case 'Y':
        case '1':
                *ret = true;
                return 0;
        case 'n':
        case 'N':
        case '0':
                *ret = false;
                return 0;
        case 'o':
        case 'O':
                if (s[1] == 'n' || s[1] == 'N') {
                        *ret = true;
                        return 0;
                }
                if (s[1] == 'f' || s[1] == 'F') {
                        *ret = false;
                        return 0;
                }
                return -EINVAL;
        default:
                return -EINVAL;
        }
}

/* Whether a comma-separated option list holds a token starting with 'option' (the kernel's strncmp()). */
static bool option_list_has(const char *list, const char *option) {
        size_t l = strlen(option);

        for (const char *p = list; p && *p;) {
                if (strncmp(p, option, l) == 0)
                        return true;
                p += strcspn(p, ",");
                while (*p == ',')
                        p++;
        }
        return false;
}

/* What the command line says, after replaying every occurrence in order as the kernel does. */
typedef struct CmdlineState {
        int passthrough; /* -1 not said, 0 translated, 1 identity */
        char *passthrough_source;
        int strict; /* iommu.strict: -1 not said, 0 lazy, 1 strict */
        char *strict_source;
        char *legacy_strict_source; /* intel_iommu=strict, amd_iommu=fullflush: strict whatever the order */
        bool iommu_off;             /* iommu=off: sets no_iommu, which no later option clears */
        int intel_off;              /* -1 not said, else the last of intel_iommu=on / off */
        bool amd_off;
} CmdlineState;

static void cmdline_state_done(CmdlineState *s) {
        free(s->passthrough_source);
        free(s->strict_source);
        free(s->legacy_strict_source);
}

static int set_source(char **dest, const char *key, const char *value) {
        char *s;

        s = strprintf("%s=%s", key, value);
        if (!s)
                return -ENOMEM;
        free(*dest);
        *dest = s;
        return 0;
}

static int replace_param(char **dest, const char *value) {
        char *s = strdup(value);

        if (!s)
                return -ENOMEM;
        free(*dest);
        *dest = s;
        return 0;
}

static int cmdline_apply(HostInfo *info, const KernelArg *a, CmdlineState *s) {
        KernelParams *p = &info->params;
        bool b;
        int r;

        /* Every parameter we care about needs a value; "iommu" alone is rejected by the kernel too. */
        if (!a->value)
                return 0;

        if (strcmp(a->key, "iommu") == 0) {
                r = replace_param(&p->iommu, a->value);
                if (r < 0)
                        return r;
                /* arch/x86/kernel/pci-dma.c iommu_setup(): "usedac" ends the option walk. */
                for (const char *o = a->value; *o;) {
                        if (strncmp(o, "off", 3) == 0)
                                s->iommu_off = true;
                        if (strncmp(o, "usedac", 6) == 0)
                                break;
                        if (strncmp(o, "pt", 2) == 0 || strncmp(o, "nopt", 4) == 0) {
                                s->passthrough = o[0] == 'p';
                                r = set_source(&s->passthrough_source, a->key, a->value);
                                if (r < 0)
                                        return r;
                        }
                        o += strcspn(o, ",");
                        if (*o == ',')
                                o++;
                }
                return 0;
        }

        if (strcmp(a->key, "iommu.passthrough") == 0) {
                r = replace_param(&p->iommu_passthrough, a->value);
                if (r < 0)
                        return r;
                if (kernel_parse_bool(a->value, &b) < 0) {
                        item_errors_add(&info->errors, "proc/cmdline", 0,
                                        "iommu.passthrough=%s is not a boolean; the kernel ignores it",
                                        a->value);
                        return 0;
                }
                s->passthrough = b;
                return set_source(&s->passthrough_source, a->key, a->value);
        }

        if (strcmp(a->key, "iommu.strict") == 0) {
                r = replace_param(&p->iommu_strict, a->value);
                if (r < 0)
                        return r;
                if (kernel_parse_bool(a->value, &b) < 0) {
                        item_errors_add(&info->errors, "proc/cmdline", 0,
                                        "iommu.strict=%s is not a boolean; the kernel ignores it", a->value);
                        return 0;
                }
                s->strict = b;
                return set_source(&s->strict_source, a->key, a->value);
        }

        if (strcmp(a->key, "intel_iommu") == 0) {
                r = replace_param(&p->intel_iommu, a->value);
                if (r < 0)
                        return r;
                /* intel_iommu_setup(): tokens are matched by prefix, each toggling dmar_disabled in turn. */
                for (const char *o = a->value; *o;) {
                        if (strncmp(o, "on", 2) == 0) {
                                s->intel_off = 0;
                                info->intel_intgpu_mapped = 1;
                        } else if (strncmp(o, "off", 3) == 0)
                                s->intel_off = 1;
                        else if (strncmp(o, "igfx_off", 8) == 0)
                                info->intel_igfx_off = true;
                        else if (strncmp(o, "intgpu_off", 10) == 0)
                                info->intel_intgpu_mapped = 0;
                        else if (strncmp(o, "strict", 6) == 0) {
                                r = set_source(&s->legacy_strict_source, a->key, a->value);
                                if (r < 0)
                                        return r;
                        }
                        o += strcspn(o, ",");
                        while (*o == ',')
                                o++;
                }
                return 0;
        }

        if (strcmp(a->key, "amd_iommu") == 0) {
                r = replace_param(&p->amd_iommu, a->value);
                if (r < 0)
                        return r;
                if (option_list_has(a->value, "off"))
                        s->amd_off = true;
                if (option_list_has(a->value, "force_isolation"))
                        info->amd_force_isolation = true;
                if (option_list_has(a->value, "fullflush"))
                        return set_source(&s->legacy_strict_source, a->key, a->value);
                return 0;
        }

        return 0;
}

/* Turns the replayed state into the default domain type the command line implies, if it implies one. */
static int cmdline_derive_type(HostInfo *info, const CmdlineState *s) {
        const char *strict_source = s->legacy_strict_source ?: s->strict_source;
        char *source;
        /* intel_iommu=strict and amd_iommu=fullflush are applied after iommu.strict=, so they win. */
        int strict = s->legacy_strict_source ? 1 : s->strict;

        info->cmdline_default_type = DOMAIN_TYPE_UNKNOWN;
        if (s->passthrough < 0) {
                /* Strictness alone does not say whether the default is translated at all. */
                if (!strict_source)
                        return 0;
                source = strprintf("%s (whether translated or identity is left to the kernel configuration)",
                                   strict_source);
        } else if (s->passthrough == 1) {
                info->cmdline_default_type = DOMAIN_TYPE_IDENTITY;
                source = strdup(s->passthrough_source);
        } else if (strict < 0)
                source = strprintf("%s (strict or lazy invalidation is left to the kernel configuration)",
                                   s->passthrough_source);
        else if (strict == 1) {
                info->cmdline_default_type = DOMAIN_TYPE_DMA;
                source = strprintf("%s, %s", s->passthrough_source, strict_source);
        } else if (!info->kernel_version_known)
                /* Lazy reads DMA-FQ from 5.15 on and DMA before; without the version, that is a guess. */
                source = strprintf("%s, %s (DMA-FQ from 5.15, DMA before; the kernel version is unknown)",
                                   s->passthrough_source, strict_source);
        else {
                bool has_fq =
                        info->kernel_major > 5 || (info->kernel_major == 5 && info->kernel_minor >= 15);

                info->cmdline_default_type = has_fq ? DOMAIN_TYPE_DMA_FQ : DOMAIN_TYPE_DMA;
                source = strprintf("%s, %s", s->passthrough_source, strict_source);
        }

        if (!source)
                return -ENOMEM;
        free(info->cmdline_default_type_source);
        info->cmdline_default_type_source = source;
        return 0;
}

static int load_cmdline(const HostRoots *roots, HostInfo *info, CmdlineState *state) {
        _cleanup_(freep) KernelArg *args = NULL;
        _cleanup_(freep) char *buf = NULL;
        size_t n;
        int r;

        r = read_attr_at(roots->proc_fd, "proc/cmdline", &info->cmdline);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                item_errors_add(&info->errors, "proc/cmdline", r, "cannot read");
                return 0;
        }

        buf = strdup(info->cmdline);
        if (!buf)
                return -ENOMEM;
        r = cmdline_split(buf, &args, &n);
        if (r < 0)
                return r;

        FOREACH_ARRAY (a, args, n) {
                r = cmdline_apply(info, a, state);
                if (r < 0)
                        return r;
        }

        return cmdline_derive_type(info, state);
}

/* ---- kernel release, IOMMU on/off, VFIO ----------------------------------------------------- */

static int load_kernel_release(const HostRoots *roots, HostInfo *info) {
        int r;

        r = read_attr_at(roots->proc_fd, "proc/sys/kernel/osrelease", &info->kernel_release);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                item_errors_add(&info->errors, "proc/sys/kernel/osrelease", r, "cannot read");
                return 0;
        }

        r = parse_kernel_version(info->kernel_release, &info->kernel_major, &info->kernel_minor);
        if (r < 0) {
                item_errors_add(&info->errors, "proc/sys/kernel/osrelease", 0, "invalid kernel release '%s'",
                                info->kernel_release);
                info->kernel_major = info->kernel_minor = 0;
                return 0;
        }
        info->kernel_version_known = true;
        return 0;
}

/* Counts a sysfs directory's entries. A missing directory is a fact (returns 0, *ret_missing set); an
 * unreadable one is an item error (returns 1). */
static int count_entries(int dir_fd, const char *path, ItemErrors *errors, size_t *ret_n,
                         bool *ret_missing) {
        _cleanup_(strv_freep) char **names = NULL;
        size_t n = 0;
        int r;

        *ret_n = 0;
        *ret_missing = false;
        r = read_dir_at(dir_fd, path, &names, &n);
        if (r == -ENOMEM)
                return r;
        if (r == -ENOENT) {
                *ret_missing = true;
                return 0;
        }
        if (r < 0) {
                item_errors_add(errors, path, r, "cannot list");
                return 1;
        }
        *ret_n = n;
        return 0;
}

/* Like exists_at(), but an error is recorded and counts as "does not exist". */
static int exists_or_error(int dir_fd, const char *path, ItemErrors *errors, bool *ret) {
        int r;

        r = exists_at(dir_fd, path);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                item_errors_add(errors, path, r, "cannot check");
                *ret = false;
                return 0;
        }
        *ret = r > 0;
        return 0;
}

static int set_off_reason(HostInfo *info, const char *reason) {
        info->iommu_off_reason = strdup(reason);
        return info->iommu_off_reason ? 0 : -ENOMEM;
}

static int load_iommu_state(const HostRoots *roots, HostInfo *info, const CmdlineState *s) {
        bool class_missing, groups_missing;
        size_t n_units, n_groups;
        int unreadable = 0, r;

        r = exists_or_error(roots->sysfs_fd, "sys/firmware/acpi/tables/DMAR", &info->errors,
                            &info->acpi_dmar);
        if (r < 0)
                return r;
        r = exists_or_error(roots->sysfs_fd, "sys/firmware/acpi/tables/IVRS", &info->errors,
                            &info->acpi_ivrs);
        if (r < 0)
                return r;

        r = count_entries(roots->sysfs_fd, "sys/class/iommu", &info->errors, &n_units, &class_missing);
        if (r < 0)
                return r;
        unreadable += r;
        r = count_entries(roots->sysfs_fd, "sys/kernel/iommu_groups", &info->errors, &n_groups,
                          &groups_missing);
        if (r < 0)
                return r;
        unreadable += r;

        info->iommu_enabled = n_units > 0 || n_groups > 0;
        if (info->iommu_enabled)
                return 0;

        /* From the most explicit cause to the least; each sentence says only what the files show. */
        if (unreadable > 0)
                return set_off_reason(info,
                                      "unknown: sys/class/iommu or sys/kernel/iommu_groups could not be "
                                      "read (see the errors)");
        if (s->iommu_off)
                return set_off_reason(info, "iommu=off on the kernel command line");
        if (class_missing && groups_missing)
                return set_off_reason(info, "the kernel has no IOMMU support: sys/class/iommu and "
                                            "sys/kernel/iommu_groups are absent (CONFIG_IOMMU_API is off)");
        if (info->acpi_dmar && s->intel_off == 1)
                return set_off_reason(info, "intel_iommu=off on the kernel command line");
        if (info->acpi_ivrs && s->amd_off)
                return set_off_reason(info, "amd_iommu=off on the kernel command line");
        if (info->acpi_dmar)
                return set_off_reason(info, "an ACPI DMAR table exists but no IOMMU unit registered (kernel "
                                            "built without CONFIG_INTEL_IOMMU, or intel_iommu disabled by "
                                            "default: try intel_iommu=on)");
        if (info->acpi_ivrs)
                return set_off_reason(info, "an ACPI IVRS table exists but no IOMMU unit registered (kernel "
                                            "built without CONFIG_AMD_IOMMU, or the AMD-Vi driver failed to "
                                            "initialize: see the kernel log)");
        return set_off_reason(info, "no DMAR or IVRS ACPI table: the firmware does not describe an IOMMU "
                                    "(enable VT-d / AMD-Vi in the firmware setup)");
}

static int load_modules(const HostRoots *roots, HostInfo *info) {
        const struct {
                const char *name;
                bool *loaded;
        } modules[] = {
                {"vfio", &info->vfio_loaded},
                {"vfio_pci", &info->vfio_pci_loaded},
                {"vfio_iommu_type1", &info->vfio_iommu_type1_loaded},
        };
        _cleanup_(freep) char *text = NULL;
        int r;

        r = read_attr_at(roots->proc_fd, "proc/modules", &text);
        if (r == -ENOMEM)
                return r;
        /* No proc/modules means a kernel without loadable modules; sys/module still shows built-ins. */
        if (r < 0 && r != -ENOENT)
                item_errors_add(&info->errors, "proc/modules", r, "cannot read");

        for (const char *line = text; line && *line;) {
                size_t len = strcspn(line, " \t\n");

                for (size_t i = 0; i < ELEMENTSOF(modules); i++)
                        if (strlen(modules[i].name) == len && strncmp(line, modules[i].name, len) == 0)
                                *modules[i].loaded = true;
                line = strchr(line, '\n');
                if (line)
                        line++;
        }

        for (size_t i = 0; i < ELEMENTSOF(modules); i++) {
                _cleanup_(freep) char *path = NULL;

                if (*modules[i].loaded)
                        continue;
                path = strprintf("sys/module/%s", modules[i].name);
                if (!path)
                        return -ENOMEM;
                r = exists_or_error(roots->sysfs_fd, path, &info->errors, modules[i].loaded);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int load_vfio(const HostRoots *roots, HostInfo *info) {
        static const char path_unsafe[] = "sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts";
        _cleanup_(freep) char *value = NULL;
        bool b;
        int r;

        r = load_modules(roots, info);
        if (r < 0)
                return r;
        r = exists_or_error(roots->dev_fd, "dev/vfio/vfio", &info->errors, &info->dev_vfio_vfio);
        if (r < 0)
                return r;
        r = exists_or_error(roots->dev_fd, "dev/iommu", &info->errors, &info->dev_iommu);
        if (r < 0)
                return r;

        r = read_attr_at(roots->sysfs_fd, path_unsafe, &value);
        if (r == -ENOMEM)
                return r;
        if (r == -ENOENT) /* vfio_iommu_type1 is not loaded */
                return 0;
        if (r < 0) {
                item_errors_add(&info->errors, path_unsafe, r, "cannot read");
                return 0;
        }
        if (parse_bool(value, &b) < 0) {
                item_errors_add(&info->errors, path_unsafe, 0, "invalid value '%s'", value);
                return 0;
        }
        info->allow_unsafe_interrupts = b;
        return 0;
}

static void host_info_donep(HostInfo *info) {
        host_info_done(info);
}

int host_info_load(const HostRoots *roots, HostInfo *ret) {
        _cleanup_(host_info_donep) HostInfo info = {
                .allow_unsafe_interrupts = -1,
                .intel_intgpu_mapped = -1,
        };
        _cleanup_(cmdline_state_done) CmdlineState state = {
                .passthrough = -1,
                .strict = -1,
                .intel_off = -1,
        };
        int r;

        r = load_kernel_release(roots, &info);
        if (r < 0)
                return r;
        r = load_cmdline(roots, &info, &state);
        if (r < 0)
                return r;
        r = load_iommu_state(roots, &info, &state);
        if (r < 0)
                return r;
        r = load_vfio(roots, &info);
        if (r < 0)
                return r;

        *ret = info;
        info = (HostInfo){};
        return 0;
}

void host_info_done(HostInfo *info) {
        if (!info)
                return;
        free(info->kernel_release);
        free(info->cmdline);
        free(info->params.iommu);
        free(info->params.iommu_passthrough);
        free(info->params.iommu_strict);
        free(info->params.intel_iommu);
        free(info->params.amd_iommu);
        free(info->iommu_off_reason);
        free(info->cmdline_default_type_source);
        item_errors_done(&info->errors);
        *info = (HostInfo){.allow_unsafe_interrupts = -1, .intel_intgpu_mapped = -1};
}

/* ---- equality ------------------------------------------------------------------------------ */

bool host_info_equal(const HostInfo *a, const HostInfo *b) {
        /* allow_unsafe_interrupts: unknown, or the module parameter as a boolean. */
        bool unsafe_irqs_equal =
                a->allow_unsafe_interrupts < 0
                        ? b->allow_unsafe_interrupts < 0
                        : b->allow_unsafe_interrupts >= 0 &&
                                  (a->allow_unsafe_interrupts > 0) == (b->allow_unsafe_interrupts > 0);

        return streq_ptr(a->kernel_release, b->kernel_release) &&
               a->kernel_version_known == b->kernel_version_known &&
               (!a->kernel_version_known ||
                (a->kernel_major == b->kernel_major && a->kernel_minor == b->kernel_minor)) &&
               streq_ptr(a->cmdline, b->cmdline) && streq_ptr(a->params.iommu, b->params.iommu) &&
               streq_ptr(a->params.iommu_passthrough, b->params.iommu_passthrough) &&
               streq_ptr(a->params.iommu_strict, b->params.iommu_strict) &&
               streq_ptr(a->params.intel_iommu, b->params.intel_iommu) &&
               streq_ptr(a->params.amd_iommu, b->params.amd_iommu) && a->iommu_enabled == b->iommu_enabled &&
               streq_ptr(a->iommu_off_reason, b->iommu_off_reason) && a->acpi_dmar == b->acpi_dmar &&
               a->acpi_ivrs == b->acpi_ivrs &&
               streq_ptr(domain_type_to_string(a->cmdline_default_type),
                         domain_type_to_string(b->cmdline_default_type)) &&
               streq_ptr(a->cmdline_default_type_source, b->cmdline_default_type_source) &&
               a->vfio_loaded == b->vfio_loaded && a->vfio_pci_loaded == b->vfio_pci_loaded &&
               a->vfio_iommu_type1_loaded == b->vfio_iommu_type1_loaded &&
               a->dev_vfio_vfio == b->dev_vfio_vfio && a->dev_iommu == b->dev_iommu && unsafe_irqs_equal &&
               item_errors_equal(&a->errors, &b->errors);
}
