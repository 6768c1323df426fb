/* The host's PCI topology (bridges and what sits below them) joined with its IOMMU groups, printed
 * as a tree for people (in the spirit of `lspci -tv`) or as Graphviz DOT (groups as clusters). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "iommud.pb-c.h"
#include "macro.h"

typedef struct Topology Topology;

/* Joins the devices (through Device.parent) and the groups; keeps pointers into both arrays, which
 * must outlive it. A parent that is not among the devices makes a device sit on its root bus. */
int topology_new(Iommud__V1__Device *const *devices, size_t n_devices, Iommud__V1__Group *const *groups,
                 size_t n_groups, Topology **ret);
Topology *topology_free(Topology *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(Topology *, topology_free)

/* One line per device below its bus or bridge; 'utf8' picks box-drawing glyphs over ASCII. */
void topology_print_tree(const Topology *t, FILE *f, bool color, bool utf8);
/* A digraph titled 'title': one cluster per group (border: viability, fill: state), edges from each
 * bridge and root bus to what sits below it, and a legend. */
void topology_print_dot(const Topology *t, FILE *f, const char *title);
