/* The host's PCI topology (bridges and what sits below them) joined with its IOMMU groups, printed
 * as a tree for people (in the spirit of `lspci -tv`) or as Graphviz DOT (groups as clusters).
 *
 * Device.parent names the upstream bridge (empty on a root bus): that is the whole topology. Every
 * device has at most one parent, so walking down from the roots visits each device once; devices
 * that no root reaches (only a confused server could send a parent cycle) are shown as roots. */
#include "topology.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "labels.h"
#include "proto-json.h"

#define NONE SIZE_MAX
/* Deeper than any PCI hierarchy; below it the tree says "…" instead of recursing further. */
#define MAX_DEPTH 64

typedef struct Node {
        const Iommud__V1__Device *device;
        const Iommud__V1__Group *group; /* NULL: in no group the daemon listed */
        size_t parent, first_child, next_sibling;
} Node;

struct Topology {
        Node *nodes; /* by address */
        size_t n_nodes;
        const Iommud__V1__Group **groups; /* by id */
        size_t n_groups;
        size_t first_root;
};

static int compare_nodes(const void *a, const void *b) {
        return strcmp(((const Node *)a)->device->address, ((const Node *)b)->device->address);
}

static int compare_groups(const void *a, const void *b) {
        uint32_t x = (*(const Iommud__V1__Group *const *)a)->id, y = (*(const Iommud__V1__Group *const *)b)->id;

        return x < y ? -1 : x > y;
}

static size_t find_node(const Topology *t, const char *address) {
        Iommud__V1__Device key = {.address = (char *)address};
        const Node k = {.device = &key}, *n;

        if (!address || !*address)
                return NONE;
        n = bsearch(&k, t->nodes, t->n_nodes, sizeof(Node), compare_nodes);
        return n ? (size_t)(n - t->nodes) : NONE;
}

static const Iommud__V1__Group *find_group(const Topology *t, int32_t id) {
        Iommud__V1__Group key = {.id = (uint32_t)id};
        const Iommud__V1__Group *k = &key, **g;

        if (id < 0)
                return NULL;
        g = bsearch(&k, t->groups, t->n_groups, sizeof(*t->groups), compare_groups);
        return g ? *g : NULL;
}

int topology_new(Iommud__V1__Device *const *devices, size_t n_devices, Iommud__V1__Group *const *groups,
                 size_t n_groups, Topology **ret) {
        _cleanup_(topology_freep) Topology *t = calloc(1, sizeof(*t));
        size_t *last_child;

        if (!t)
                return -ENOMEM;
        t->nodes = calloc(n_devices ?: 1, sizeof(Node));
        t->groups = calloc(n_groups ?: 1, sizeof(*t->groups));
        if (!t->nodes || !t->groups)
                return -ENOMEM;
        for (size_t i = 0; i < n_devices; i++)
                if (devices[i]->address)
                        t->nodes[t->n_nodes++].device = devices[i];
        for (size_t i = 0; i < n_groups; i++)
                t->groups[t->n_groups++] = groups[i];
        qsort(t->nodes, t->n_nodes, sizeof(Node), compare_nodes);
        qsort(t->groups, t->n_groups, sizeof(*t->groups), compare_groups);

        /* Children in address order: each list grows at its tail. */
        last_child = malloc((t->n_nodes + 1) * sizeof(size_t));
        if (!last_child)
                return -ENOMEM;
        for (size_t i = 0; i <= t->n_nodes; i++)
                last_child[i] = NONE;
        t->first_root = NONE;
        for (size_t i = 0; i < t->n_nodes; i++) {
                Node *n = &t->nodes[i];
                size_t p = find_node(t, n->device->parent), *head;

                n->group = find_group(t, n->device->group);
                n->parent = p == i ? NONE : p;
                n->first_child = n->next_sibling = NONE;
                head = n->parent == NONE ? &t->first_root : &t->nodes[n->parent].first_child;
                if (last_child[n->parent == NONE ? t->n_nodes : n->parent] == NONE)
                        *head = i;
                else
                        t->nodes[last_child[n->parent == NONE ? t->n_nodes : n->parent]].next_sibling = i;
                last_child[n->parent == NONE ? t->n_nodes : n->parent] = i;
        }
        free(last_child);
        *ret = TAKE_PTR(t);
        return 0;
}

Topology *topology_free(Topology *t) {
        if (!t)
                return NULL;
        free(t->nodes);
        free(t->groups);
        free(t);
        return NULL;
}

/* "0000:01" of "0000:01:00.0". */
static void bus_of(const char *address, char bus[static 8]) {
        snprintf(bus, 8, "%.7s", address);
}

/* ---- tree ------------------------------------------------------------------------------------- */

typedef struct Glyphs {
        const char *branch, *last, *vertical, *space, *more;
} Glyphs;

static const Glyphs utf8_glyphs = {"├─ ", "└─ ", "│  ", "   ", "…"};
static const Glyphs ascii_glyphs = {"|- ", "`- ", "|  ", "   ", "..."};

typedef struct TreeWalk {
        const Topology *t;
        FILE *f;
        bool color;
        const Glyphs *glyphs;
        bool *visited;
        char prefix[MAX_DEPTH * 8 + 1];
} TreeWalk;

static const char *tc(const TreeWalk *w, const char *color) {
        return w->color && color ? color : "";
}

/* "[group 1: DMA, not viable, host, libvirt:vm1]" */
static void print_group_note(const TreeWalk *w, const Iommud__V1__Group *g) {
        fprintf(w->f, "[group %" PRIu32 ": %s, %s%s%s", g->id, or_dash(g->domain_type_raw),
                tc(w, g->viable ? COLOR_GREEN : COLOR_RED), g->viable ? "viable" : "not viable", tc(w, COLOR_RESET));
        if (g->state != IOMMUD__V1__GROUP_STATE__GROUP_STATE_UNSPECIFIED)
                fprintf(w->f, ", %s%s%s", tc(w, group_state_color(g)), group_state_label(g), tc(w, COLOR_RESET));
        if (g->owner && g->owner->kind && *g->owner->kind) {
                _cleanup_(freep) char *owner = group_owner_label(g);

                fprintf(w->f, ", %s", owner ?: "?");
        }
        fputs("]\n", w->f);
}

static void print_device_line(TreeWalk *w, const Node *n) {
        const Iommud__V1__Device *d = n->device;
        char b1[16], b2[16];

        fprintf(w->f, "%s%s%s  %s %s  %s(%s)%s  ", tc(w, COLOR_BOLD), d->address, tc(w, COLOR_RESET),
                device_vendor_label(d, b1), device_name_label(d, b2), tc(w, driver_color(d->driver)),
                d->driver && *d->driver ? d->driver : "no driver", tc(w, COLOR_RESET));
        if (n->group)
                print_group_note(w, n->group);
        else
                fprintf(w->f, "%s[no IOMMU group]%s\n", tc(w, COLOR_YELLOW), tc(w, COLOR_RESET));
}

static void print_node(TreeWalk *w, size_t i, bool last, size_t depth) {
        const Node *n = &w->t->nodes[i];
        size_t len = strlen(w->prefix);

        if (w->visited[i])
                return;
        w->visited[i] = true;
        fprintf(w->f, "%s%s", w->prefix, last ? w->glyphs->last : w->glyphs->branch);
        print_device_line(w, n);
        if (n->first_child == NONE)
                return;
        if (depth + 1 >= MAX_DEPTH) {
                fprintf(w->f, "%s%s%s\n", w->prefix, last ? w->glyphs->space : w->glyphs->vertical, w->glyphs->more);
                return;
        }
        strcat(w->prefix, last ? w->glyphs->space : w->glyphs->vertical);
        for (size_t c = n->first_child; c != NONE; c = w->t->nodes[c].next_sibling)
                print_node(w, c, w->t->nodes[c].next_sibling == NONE, depth + 1);
        w->prefix[len] = 0;
}

void topology_print_tree(const Topology *t, FILE *f, bool color, bool utf8) {
        _cleanup_(freep) bool *visited = calloc(t->n_nodes ?: 1, sizeof(bool));
        TreeWalk w = {.t = t, .f = f, .color = color, .glyphs = utf8 ? &utf8_glyphs : &ascii_glyphs};
        char bus[8] = "";

        if (!visited)
                return;
        w.visited = visited;
        /* Roots come in address order: one heading per root bus, its devices below. */
        for (size_t i = t->first_root; i != NONE; i = t->nodes[i].next_sibling) {
                size_t next = t->nodes[i].next_sibling;

                if (strncmp(t->nodes[i].device->address, bus, 7) != 0) {
                        bus_of(t->nodes[i].device->address, bus);
                        fprintf(f, "%s[%s]%s\n", tc(&w, COLOR_BOLD), bus, tc(&w, COLOR_RESET));
                }
                print_node(&w, i, next == NONE || strncmp(t->nodes[next].device->address, bus, 7) != 0, 0);
        }
        for (size_t i = 0; i < t->n_nodes; i++)
                if (!visited[i]) {
                        fprintf(f, "%s[no path from a root bus]%s\n", tc(&w, COLOR_YELLOW), tc(&w, COLOR_RESET));
                        print_node(&w, i, true, 0);
                }
        /* Groups the kernel shows without a PCI member sit on no bus. */
        for (size_t i = 0; i < t->n_groups; i++)
                if (t->groups[i]->n_device_addresses == 0) {
                        fprintf(f, "%s[no PCI member]%s ", tc(&w, COLOR_YELLOW), tc(&w, COLOR_RESET));
                        print_group_note(&w, t->groups[i]);
                }
}

/* ---- Graphviz --------------------------------------------------------------------------------- */

/* Border: can the group go to a VM. Fill: what iommud holds of it. */
#define DOT_VIABLE "#1e8449"
#define DOT_NOT_VIABLE "#c0392b"

static const struct {
        Iommud__V1__GroupState state;
        const char *fill;
} dot_state_fills[] = {
        {IOMMUD__V1__GROUP_STATE__GROUP_STATE_HOST, "#f2f3f4"},
        {IOMMUD__V1__GROUP_STATE__GROUP_STATE_VFIO_READY, "#d5f5e3"},
        {IOMMUD__V1__GROUP_STATE__GROUP_STATE_IN_USE, "#d6eaf8"},
        {IOMMUD__V1__GROUP_STATE__GROUP_STATE_BLOCKED, "#d5d8dc"},
        {IOMMUD__V1__GROUP_STATE__GROUP_STATE_TRANSITIONING, "#fcf3cf"},
        {IOMMUD__V1__GROUP_STATE__GROUP_STATE_FAILED, "#fadbd8"},
};

static const char *dot_fill(Iommud__V1__GroupState state) {
        FOREACH_ARRAY (s, dot_state_fills, ELEMENTSOF(dot_state_fills))
                if (s->state == state)
                        return s->fill;
        return "#ffffff";
}

/* A DOT string's contents: quotes and backslashes escaped; control characters (none reach here
 * from iommuctl, which escapes server text first) as '?', so the file always parses. */
static void dot_text(FILE *f, const char *s) {
        for (; s && *s; s++) {
                if (*s == '"' || *s == '\\')
                        fputc('\\', f);
                fputc((unsigned char)*s < 0x20 ? '?' : *s, f);
        }
}

static void dot_device(FILE *f, const char *indent, const Iommud__V1__Device *d) {
        char b1[16];

        fprintf(f, "%s\"", indent);
        dot_text(f, d->address);
        fputs("\" [label=\"", f);
        dot_text(f, d->address);
        fputs("\\n", f);
        dot_text(f, device_name_label(d, b1));
        fputs("\\n", f);
        dot_text(f, d->driver && *d->driver ? d->driver : "no driver");
        fprintf(f, "\"%s];\n", d->driver && *d->driver ? "" : ", fontcolor=\"#7f8c8d\"");
}

static void dot_group(FILE *f, const Topology *t, const Iommud__V1__Group *g, bool *emitted) {
        fprintf(f, "\tsubgraph \"cluster_group_%" PRIu32 "\" {\n", g->id);
        fprintf(f, "\t\tlabel=\"group %" PRIu32 " · ", g->id);
        dot_text(f, or_dash(g->domain_type_raw));
        fprintf(f, "\\n%s", g->viable ? "viable" : "not viable");
        if (g->state != IOMMUD__V1__GROUP_STATE__GROUP_STATE_UNSPECIFIED)
                fprintf(f, " · %s", group_state_label(g));
        if (g->owner && g->owner->kind && *g->owner->kind) {
                _cleanup_(freep) char *owner = group_owner_label(g);

                fputs("\\n", f);
                dot_text(f, owner ?: "?");
        }
        fprintf(f, "\";\n\t\tstyle=\"rounded,filled\"; color=\"%s\"; fillcolor=\"%s\"; penwidth=2;\n",
                g->viable ? DOT_VIABLE : DOT_NOT_VIABLE, dot_fill(g->state));
        /* Graphviz draws no empty cluster: a group without members gets a node that says so. */
        if (g->n_device_addresses == 0)
                fprintf(f, "\t\t\"group %" PRIu32 " empty\" [label=\"no PCI member\", style=\"rounded,dashed\"];\n",
                        g->id);
        for (size_t k = 0; k < g->n_device_addresses; k++) {
                size_t i = find_node(t, g->device_addresses[k]);

                /* Each device once, in the group that lists it and it names. */
                if (i == NONE || emitted[i] || t->nodes[i].group != g)
                        continue;
                emitted[i] = true;
                dot_device(f, "\t\t", t->nodes[i].device);
        }
        fputs("\t}\n", f);
}

static void dot_legend(FILE *f) {
        fputs("\tsubgraph \"cluster_legend\" {\n"
              "\t\tlabel=\"legend\"; style=\"rounded\"; color=\"#aab7b8\";\n"
              "\t\tnode [shape=box, style=\"rounded,filled\", penwidth=2, fontsize=9];\n",
              f);
        fprintf(f, "\t\t\"legend viable\" [label=\"viable for VFIO\", color=\"%s\", fillcolor=\"#ffffff\"];\n",
                DOT_VIABLE);
        fprintf(f, "\t\t\"legend not viable\" [label=\"not viable\", color=\"%s\", fillcolor=\"#ffffff\"];\n",
                DOT_NOT_VIABLE);
        FOREACH_ARRAY (s, dot_state_fills, ELEMENTSOF(dot_state_fills))
                fprintf(f, "\t\t\"legend %s\" [label=\"%s\", color=\"#aab7b8\", fillcolor=\"%s\"];\n",
                        proto_group_state_to_string(s->state), proto_group_state_to_string(s->state), s->fill);
        fputs("\t}\n", f);
}

void topology_print_dot(const Topology *t, FILE *f, const char *title) {
        _cleanup_(freep) bool *emitted = calloc(t->n_nodes ?: 1, sizeof(bool));
        char bus[8] = "";

        if (!emitted)
                return;
        fputs("digraph iommu {\n"
              "\tgraph [rankdir=LR, fontname=\"Helvetica\", fontsize=12, labelloc=t, nodesep=0.15, ranksep=0.6, "
              "label=\"",
              f);
        dot_text(f, title);
        fputs("\"];\n"
              "\tnode [shape=box, style=\"rounded,filled\", fillcolor=\"#ffffff\", fontname=\"Helvetica\", "
              "fontsize=10];\n"
              "\tedge [color=\"#7f8c8d\", arrowhead=none];\n",
              f);
        for (size_t i = 0; i < t->n_groups; i++)
                dot_group(f, t, t->groups[i], emitted);
        for (size_t i = 0; i < t->n_nodes; i++)
                if (!emitted[i])
                        dot_device(f, "\t", t->nodes[i].device);

        /* One node per root bus, then every edge down the hierarchy. */
        for (size_t i = t->first_root; i != NONE; i = t->nodes[i].next_sibling)
                if (strncmp(t->nodes[i].device->address, bus, 7) != 0) {
                        bus_of(t->nodes[i].device->address, bus);
                        fputs("\t\"bus ", f);
                        dot_text(f, bus);
                        fputs("\" [label=\"PCI bus ", f);
                        dot_text(f, bus);
                        fputs("\", shape=oval, fillcolor=\"#eaecee\"];\n", f);
                }
        for (size_t i = 0; i < t->n_nodes; i++) {
                const Node *n = &t->nodes[i];

                fputs("\t\"", f);
                if (n->parent == NONE) {
                        bus_of(n->device->address, bus);
                        fputs("bus ", f);
                        dot_text(f, bus);
                } else
                        dot_text(f, t->nodes[n->parent].device->address);
                fputs("\" -> \"", f);
                dot_text(f, n->device->address);
                fputs("\";\n", f);
        }
        dot_legend(f);
        fputs("}\n", f);
}
