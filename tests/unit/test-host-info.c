/* Unit tests for host-info.c: command line, derived default type, off reasons, VFIO state. */
#undef NDEBUG
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fake-tree.h"
#include "inventory.h"

/* A tree where the IOMMU is on (one group) unless the test empties it. */
static FakeTree *tree_with(const char *release, const char *cmdline) {
        FakeTree *t = fake_tree_new();

        if (release)
                fake_tree_write(t, "proc/sys/kernel/osrelease", release);
        if (cmdline)
                fake_tree_write(t, "proc/cmdline", cmdline);
        fake_tree_write(t, "proc/modules", "");
        fake_tree_mkdir(t, "sys/class/iommu");
        fake_tree_mkdir(t, "sys/kernel/iommu_groups/0/devices");
        return t;
}

static void load(FakeTree *t, HostInfo *info) {
        assert_int_equal(host_info_load(fake_tree_roots(t), info), 0);
}

static bool has_error(const HostInfo *info, const char *file) {
        for (size_t i = 0; i < info->errors.n; i++)
                if (strcmp(info->errors.items[i].file, file) == 0)
                        return true;
        return false;
}

/* Loads a tree with the given release and command line and returns the derived type. */
static DomainType derived(const char *release, const char *cmdline, char **ret_source) {
        FakeTree *t = tree_with(release, cmdline);
        HostInfo info;
        DomainType type;

        load(t, &info);
        type = info.cmdline_default_type;
        if (ret_source) {
                *ret_source =
                        info.cmdline_default_type_source ? strdup(info.cmdline_default_type_source) : NULL;
        }
        host_info_done(&info);
        fake_tree_free(t);
        return type;
}

static void test_domain_type_strings(void **state) {
        assert_null(domain_type_to_string(DOMAIN_TYPE_UNKNOWN));
        assert_string_equal(domain_type_to_string(DOMAIN_TYPE_DMA_FQ), "DMA-FQ");
        assert_string_equal(domain_type_to_string(DOMAIN_TYPE_KERNEL_UNKNOWN), "unknown");
        assert_null(domain_type_to_string(_DOMAIN_TYPE_MAX));
        for (DomainType t = DOMAIN_TYPE_IDENTITY; t < _DOMAIN_TYPE_MAX; t++)
                assert_int_equal(domain_type_from_string(domain_type_to_string(t)), t);
        assert_int_equal(domain_type_from_string("dma"), DOMAIN_TYPE_UNKNOWN);
        assert_int_equal(domain_type_from_string(NULL), DOMAIN_TYPE_UNKNOWN);
}

static void test_kernel_release(void **state) {
        FakeTree *t = tree_with("6.1.0-57-amd64", "");
        HostInfo info;

        load(t, &info);
        assert_string_equal(info.kernel_release, "6.1.0-57-amd64");
        assert_true(info.kernel_version_known);
        assert_int_equal(info.kernel_major, 6);
        assert_int_equal(info.kernel_minor, 1);
        assert_int_equal(info.errors.n, 0);
        host_info_done(&info);
        fake_tree_free(t);

        /* Garbage and missing files are item errors, never a guessed version. */
        t = tree_with("linux", "");
        load(t, &info);
        assert_false(info.kernel_version_known);
        assert_true(has_error(&info, "proc/sys/kernel/osrelease"));
        host_info_done(&info);
        fake_tree_free(t);

        t = tree_with(NULL, NULL);
        load(t, &info);
        assert_null(info.kernel_release);
        assert_null(info.cmdline);
        assert_false(info.kernel_version_known);
        assert_true(has_error(&info, "proc/sys/kernel/osrelease"));
        assert_true(has_error(&info, "proc/cmdline"));
        assert_int_equal(info.cmdline_default_type, DOMAIN_TYPE_UNKNOWN);
        host_info_done(&info);
        fake_tree_free(t);
}

static void test_cmdline_params(void **state) {
        FakeTree *t = tree_with("6.12.118+deb13-amd64",
                                "BOOT_IMAGE=/vmlinuz-6.12 root=UUID=x ro iommu=off iommu=pt,nomerge "
                                "\"intel_iommu=on,sm_on\" amd_iommu=\"fullflush\" iommu.strict=0 quiet "
                                "-- iommu=nopt intel_iommu=off\n");
        HostInfo info;

        load(t, &info);
        /* Last occurrence wins; quotes are dropped; nothing after "--" belongs to the kernel. */
        assert_string_equal(info.params.iommu, "pt,nomerge");
        assert_string_equal(info.params.intel_iommu, "on,sm_on");
        assert_string_equal(info.params.amd_iommu, "fullflush");
        assert_string_equal(info.params.iommu_strict, "0");
        assert_null(info.params.iommu_passthrough);
        assert_int_equal(info.cmdline_default_type, DOMAIN_TYPE_IDENTITY);
        assert_string_equal(info.cmdline_default_type_source, "iommu=pt,nomerge");
        assert_int_equal(info.errors.n, 0);
        host_info_done(&info);
        fake_tree_free(t);

        /* A quoted value with blanks stays one argument. */
        t = tree_with("6.1.0", "dyndbg=\"file foo.c +p\" iommu.passthrough=1");
        load(t, &info);
        assert_string_equal(info.params.iommu_passthrough, "1");
        assert_int_equal(info.cmdline_default_type, DOMAIN_TYPE_IDENTITY);
        host_info_done(&info);
        fake_tree_free(t);
}

static void test_cmdline_derived_type(void **state) {
        char *source = NULL;

        /* Nothing said: left to Kconfig and the driver. */
        assert_int_equal(derived("6.1.0", "ro quiet", &source), DOMAIN_TYPE_UNKNOWN);
        assert_null(source);

        /* iommu= options match by prefix, like the kernel's strncmp(). */
        assert_int_equal(derived("6.1.0", "iommu=ptfoo", NULL), DOMAIN_TYPE_IDENTITY);
        assert_int_equal(derived("6.1.0", "iommu=soft,nopt iommu.strict=1", &source), DOMAIN_TYPE_DMA);
        assert_string_equal(source, "iommu=soft,nopt, iommu.strict=1");
        free(source);
        /* "usedac" ends the option walk. */
        assert_int_equal(derived("6.1.0", "iommu=usedac,pt", NULL), DOMAIN_TYPE_UNKNOWN);

        /* Last one wins across parameters. */
        assert_int_equal(derived("6.1.0", "iommu=pt iommu.passthrough=0 iommu.strict=1", NULL),
                         DOMAIN_TYPE_DMA);
        assert_int_equal(derived("6.1.0", "iommu.passthrough=0 iommu=pt", NULL), DOMAIN_TYPE_IDENTITY);
        assert_int_equal(derived("6.1.0", "iommu.passthrough=on", NULL), DOMAIN_TYPE_IDENTITY);

        /* Lazy is DMA-FQ from 5.15 and plain DMA before. */
        assert_int_equal(derived("6.1.0", "iommu=nopt iommu.strict=0", NULL), DOMAIN_TYPE_DMA_FQ);
        assert_int_equal(derived("5.10.0-35-amd64", "iommu=nopt iommu.strict=0", NULL), DOMAIN_TYPE_DMA);
        assert_int_equal(derived(NULL, "iommu=nopt iommu.strict=0", NULL), DOMAIN_TYPE_UNKNOWN);

        /* The legacy driver options are strict whatever iommu.strict says. */
        assert_int_equal(
                derived("6.12.0", "iommu.passthrough=0 intel_iommu=on,strict iommu.strict=0", &source),
                DOMAIN_TYPE_DMA);
        assert_string_equal(source, "iommu.passthrough=0, intel_iommu=on,strict");
        free(source);
        assert_int_equal(derived("6.12.0", "iommu=nopt amd_iommu=fullflush", NULL), DOMAIN_TYPE_DMA);

        /* Translated without a known strictness: unknown, but the source says what was seen. */
        assert_int_equal(derived("6.12.0", "iommu.passthrough=0", &source), DOMAIN_TYPE_UNKNOWN);
        assert_non_null(source);
        assert_non_null(strstr(source, "iommu.passthrough=0"));
        free(source);

        /* Strictness alone does not make the default translated. */
        assert_int_equal(derived("6.12.0", "iommu.strict=1", &source), DOMAIN_TYPE_UNKNOWN);
        assert_non_null(strstr(source, "iommu.strict=1"));
        free(source);
}

static void test_cmdline_bad_bool(void **state) {
        FakeTree *t = tree_with("6.1.0", "iommu.passthrough=maybe");
        HostInfo info;

        load(t, &info);
        assert_string_equal(info.params.iommu_passthrough, "maybe");
        assert_int_equal(info.cmdline_default_type, DOMAIN_TYPE_UNKNOWN);
        assert_true(has_error(&info, "proc/cmdline"));
        host_info_done(&info);
        fake_tree_free(t);
}

/* A tree with the IOMMU off: empty class and group directories, plus the given ACPI tables. */
static char *off_reason(const char *cmdline, bool dmar, bool ivrs) {
        FakeTree *t = fake_tree_new();
        HostInfo info;
        char *reason;

        fake_tree_write(t, "proc/sys/kernel/osrelease", "6.1.0-57-amd64");
        fake_tree_write(t, "proc/cmdline", cmdline);
        fake_tree_mkdir(t, "sys/class/iommu");
        fake_tree_mkdir(t, "sys/kernel/iommu_groups");
        fake_tree_mkdir(t, "sys/firmware/acpi/tables");
        if (dmar)
                fake_tree_write(t, "sys/firmware/acpi/tables/DMAR", "");
        if (ivrs)
                fake_tree_write(t, "sys/firmware/acpi/tables/IVRS", "");

        load(t, &info);
        assert_false(info.iommu_enabled);
        assert_int_equal(info.acpi_dmar, dmar);
        assert_int_equal(info.acpi_ivrs, ivrs);
        assert_non_null(info.iommu_off_reason);
        reason = strdup(info.iommu_off_reason);
        host_info_done(&info);
        fake_tree_free(t);
        return reason;
}

static void assert_reason(char *reason, const char *start) {
        assert_non_null(reason);
        if (strncmp(reason, start, strlen(start)) != 0)
                fail_msg("reason '%s' does not start with '%s'", reason, start);
        free(reason);
}

static void test_off_reasons(void **state) {
        assert_reason(off_reason("ro", false, false), "no DMAR or IVRS ACPI table");
        assert_reason(off_reason("ro iommu=off", true, false), "iommu=off on the kernel command line");
        assert_reason(off_reason("intel_iommu=off", true, false),
                      "intel_iommu=off on the kernel command line");
        /* The last intel_iommu= toggle counts. */
        assert_reason(off_reason("intel_iommu=off intel_iommu=on", true, false),
                      "an ACPI DMAR table exists");
        assert_reason(off_reason("ro", true, false),
                      "an ACPI DMAR table exists but no IOMMU unit registered");
        assert_reason(off_reason("amd_iommu=force_isolation,off", false, true),
                      "amd_iommu=off on the kernel command line");
        assert_reason(off_reason("ro", false, true), "an ACPI IVRS table exists");
        /* intel_iommu=off on an AMD host is not the reason. */
        assert_reason(off_reason("intel_iommu=off", false, false), "no DMAR or IVRS ACPI table");
}

static void test_no_iommu_support(void **state) {
        FakeTree *t = fake_tree_new();
        HostInfo info;

        fake_tree_write(t, "proc/sys/kernel/osrelease", "6.1.0");
        fake_tree_write(t, "proc/cmdline", "ro");
        load(t, &info);
        assert_false(info.iommu_enabled);
        assert_reason(strdup(info.iommu_off_reason), "the kernel has no IOMMU support");
        /* Missing optional files are facts, not errors (no proc/modules either: a monolithic kernel). */
        assert_int_equal(info.errors.n, 0);
        host_info_done(&info);
        fake_tree_free(t);
}

static void test_enabled(void **state) {
        FakeTree *t = tree_with("6.1.0", "ro");
        HostInfo info;

        /* A unit alone counts too. */
        fake_tree_symlink(t, "sys/class/iommu/dmar0", "../../devices/virtual/iommu/dmar0");
        load(t, &info);
        assert_true(info.iommu_enabled);
        assert_null(info.iommu_off_reason);
        assert_false(info.acpi_dmar);
        host_info_done(&info);
        fake_tree_free(t);
}

static void test_vfio(void **state) {
        FakeTree *t = tree_with("6.1.0", "ro");
        HostInfo info;

        fake_tree_write(t, "proc/modules",
                        "vfio_pci 16384 0 - Live 0x0000000000000000\n"
                        "vfio_pci_core 81920 1 vfio_pci, Live 0x0000000000000000\n"
                        "vfio 45056 2 vfio_pci_core,vfio_iommu_type1, Live 0x0000000000000000\n");
        /* vfio_iommu_type1 built in: only sys/module shows it. */
        fake_tree_write(t, "sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts", "N\n");
        fake_tree_write(t, "dev/vfio/vfio", "");
        load(t, &info);
        assert_true(info.vfio_loaded);
        assert_true(info.vfio_pci_loaded);
        assert_true(info.vfio_iommu_type1_loaded);
        assert_true(info.dev_vfio_vfio);
        assert_false(info.dev_iommu);
        assert_int_equal(info.allow_unsafe_interrupts, 0);
        assert_int_equal(info.errors.n, 0);
        host_info_done(&info);
        fake_tree_free(t);

        /* Nothing loaded: the parameter is absent, which is unknown and no error. */
        t = tree_with("6.1.0", "ro");
        fake_tree_write(t, "proc/modules", "vfio_pci_core 81920 0 - Live 0x0\n");
        fake_tree_write(t, "dev/iommu", "");
        load(t, &info);
        assert_false(info.vfio_loaded);
        assert_false(info.vfio_pci_loaded);
        assert_false(info.vfio_iommu_type1_loaded);
        assert_false(info.dev_vfio_vfio);
        assert_true(info.dev_iommu);
        assert_int_equal(info.allow_unsafe_interrupts, -1);
        assert_int_equal(info.errors.n, 0);
        host_info_done(&info);
        fake_tree_free(t);

        /* Garbage is an item error and stays unknown. */
        t = tree_with("6.1.0", "ro");
        fake_tree_write(t, "sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts", "maybe\n");
        load(t, &info);
        assert_true(info.vfio_iommu_type1_loaded);
        assert_int_equal(info.allow_unsafe_interrupts, -1);
        assert_true(has_error(&info, "sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts"));
        host_info_done(&info);
        fake_tree_free(t);
}

static void test_done_accepts_empty(void **state) {
        HostInfo info = {};

        host_info_done(&info);
        host_info_done(&info);
        host_info_done(NULL);
        assert_int_equal(info.allow_unsafe_interrupts, -1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_domain_type_strings),
                cmocka_unit_test(test_kernel_release),
                cmocka_unit_test(test_cmdline_params),
                cmocka_unit_test(test_cmdline_derived_type),
                cmocka_unit_test(test_cmdline_bad_bool),
                cmocka_unit_test(test_off_reasons),
                cmocka_unit_test(test_no_iommu_support),
                cmocka_unit_test(test_enabled),
                cmocka_unit_test(test_vfio),
                cmocka_unit_test(test_done_accepts_empty),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
