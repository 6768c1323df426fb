/* Unit tests for client/topology.c: the PCI tree from Device.parent and its Graphviz form, including
 * what only a confused server sends (a missing parent, a parent cycle, a device in no group). */
#undef NDEBUG
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "iommud.pb-c.h"
#include "macro.h"
#include "topology.h"

static Iommud__V1__Device devices[8];
static Iommud__V1__Group groups[3];
static char *members0[] = {"0000:00:00.0"}, *members1[] = {"0000:00:01.0", "0000:01:00.0"},
            *members2[] = {"0000:01:00.1"};

static void device(size_t i, char *address, char *parent, int32_t group, char *name, char *driver) {
        devices[i] = (Iommud__V1__Device)IOMMUD__V1__DEVICE__INIT;
        devices[i].address = address;
        devices[i].parent = parent;
        devices[i].group = group;
        devices[i].vendor_name = "Vendor";
        devices[i].device_name = name;
        devices[i].driver = driver;
}

static void group(size_t i, uint32_t id, bool viable, char **members, size_t n) {
        groups[i] = (Iommud__V1__Group)IOMMUD__V1__GROUP__INIT;
        groups[i].id = id;
        groups[i].domain_type_raw = "DMA";
        groups[i].viable = viable;
        groups[i].state = IOMMUD__V1__GROUP_STATE__GROUP_STATE_HOST;
        groups[i].device_addresses = members;
        groups[i].n_device_addresses = n;
}

/* Handed over out of address order, as nothing promises an order. */
static int setup(void **state) {
        device(0, "0000:01:00.1", "0000:00:01.0", 2, "Audio", "snd_hda_intel");
        device(1, "0000:00:01.0", "", 1, "Root port", "pcieport");
        device(2, "0000:00:00.0", "", 0, "Host \"bridge\" \\ x", "");
        device(3, "0000:01:00.0", "0000:00:01.0", 1, "GPU", "vfio-pci");
        device(4, "0001:00:00.0", "0001:ff:00.0", -1, "Orphan", "");
        device(5, "0000:05:00.0", "0000:06:00.0", -1, "Loop A", "");
        device(6, "0000:06:00.0", "0000:05:00.0", -1, "Loop B", "");
        device(7, "0000:00:02.0", "0000:00:02.0", 0, "Own parent", "");
        group(0, 2, true, members2, 1);
        group(1, 0, false, members0, 1);
        group(2, 1, true, members1, 2);
        return 0;
}

static char *capture_tree(bool utf8) {
        Iommud__V1__Device *d[ELEMENTSOF(devices)];
        Iommud__V1__Group *g[ELEMENTSOF(groups)];
        _cleanup_(topology_freep) Topology *t = NULL;
        char *text = NULL;
        size_t len = 0;
        FILE *f;

        for (size_t i = 0; i < ELEMENTSOF(devices); i++)
                d[i] = &devices[i];
        for (size_t i = 0; i < ELEMENTSOF(groups); i++)
                g[i] = &groups[i];
        assert_int_equal(topology_new(d, ELEMENTSOF(d), g, ELEMENTSOF(g), &t), 0);
        f = open_memstream(&text, &len);
        assert_non_null(f);
        if (utf8)
                topology_print_tree(t, f, false, true);
        else
                topology_print_dot(t, f, "test \"host\"");
        assert_int_equal(fclose(f), 0);
        return text;
}

static void test_tree(void **state) {
        _cleanup_(freep) char *tree = capture_tree(true);

        assert_string_equal(
                tree,
                "[0000:00]\n"
                "├─ 0000:00:00.0  Vendor Host \"bridge\" \\ x  (no driver)  [group 0: DMA, not viable, host]\n"
                "├─ 0000:00:01.0  Vendor Root port  (pcieport)  [group 1: DMA, viable, host]\n"
                "│  ├─ 0000:01:00.0  Vendor GPU  (vfio-pci)  [group 1: DMA, viable, host]\n"
                "│  └─ 0000:01:00.1  Vendor Audio  (snd_hda_intel)  [group 2: DMA, viable, host]\n"
                "└─ 0000:00:02.0  Vendor Own parent  (no driver)  [group 0: DMA, not viable, host]\n"
                "[0001:00]\n"
                "└─ 0001:00:00.0  Vendor Orphan  (no driver)  [no IOMMU group]\n"
                "[no path from a root bus]\n"
                "└─ 0000:05:00.0  Vendor Loop A  (no driver)  [no IOMMU group]\n"
                "   └─ 0000:06:00.0  Vendor Loop B  (no driver)  [no IOMMU group]\n");
}

static void test_dot(void **state) {
        _cleanup_(freep) char *dot = capture_tree(false);

        assert_non_null(strstr(dot, "label=\"test \\\"host\\\"\""));
        /* Group 1: both members inside its cluster, green border (viable). */
        assert_non_null(strstr(dot, "\tsubgraph \"cluster_group_1\" {\n"
                                    "\t\tlabel=\"group 1 · DMA\\nviable · host\";\n"
                                    "\t\tstyle=\"rounded,filled\"; color=\"#1e8449\"; fillcolor=\"#f2f3f4\"; penwidth=2;\n"
                                    "\t\t\"0000:00:01.0\" [label=\"0000:00:01.0\\nRoot port\\npcieport\"];\n"
                                    "\t\t\"0000:01:00.0\" [label=\"0000:01:00.0\\nGPU\\nvfio-pci\"];\n"
                                    "\t}\n"));
        assert_non_null(strstr(dot, "\\nHost \\\"bridge\\\" \\\\ x\\n"));
        assert_non_null(strstr(dot, "color=\"#c0392b\""));
        /* Edges: from the bridge, from the root bus, for orphans from their own bus, and the loop. */
        assert_non_null(strstr(dot, "\t\"0000:00:01.0\" -> \"0000:01:00.1\";\n"));
        assert_non_null(strstr(dot, "\t\"bus 0000:00\" -> \"0000:00:00.0\";\n"));
        assert_non_null(strstr(dot, "\t\"bus 0001:00\" -> \"0001:00:00.0\";\n"));
        assert_non_null(strstr(dot, "\t\"0000:06:00.0\" -> \"0000:05:00.0\";\n"));
        assert_non_null(strstr(dot, "\t\"bus 0000:00\" [label=\"PCI bus 0000:00\""));
        assert_non_null(strstr(dot, "subgraph \"cluster_legend\""));
        assert_string_equal(dot + strlen(dot) - 2, "}\n");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup(test_tree, setup),
                cmocka_unit_test_setup(test_dot, setup),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
