/* Domain XML with libxml2: libvirt has no public parser, and the hook and the tracker read the
 * same elements, so both use this file. */
#include "domain-xml.h"

#include <errno.h>
#include <inttypes.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "string-util.h"
#include "strv.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(xmlDocPtr, xmlFreeDoc);
DEFINE_TRIVIAL_CLEANUP_FUNC(xmlChar *, xmlFree);

static bool name_is(const xmlNode *n, const char *name) {
        return n->type == XML_ELEMENT_NODE && streq((const char *)n->name, name);
}

static xmlNode *child(const xmlNode *parent, const char *name) {
        for (xmlNode *n = parent->children; n; n = n->next)
                if (name_is(n, name))
                        return n;
        return NULL;
}

/* A missing attribute counts as its default. */
static bool attribute_is(xmlNode *n, const char *name, const char *value, const char *missing) {
        _cleanup_(xmlFreep) xmlChar *v = xmlGetProp(n, (const xmlChar *)name);

        return streq(v ? (const char *)v : missing, value);
}

/* libvirt writes 0x-prefixed hex but accepts decimal too; a missing domain= is PCI domain 0. */
static int address_part(xmlNode *n, const char *name, unsigned long max, bool optional, unsigned long *ret) {
        _cleanup_(xmlFreep) xmlChar *v = xmlGetProp(n, (const xmlChar *)name);
        char *end;

        if (!v) {
                *ret = 0;
                return optional ? 0 : -EINVAL;
        }
        errno = 0;
        *ret = strtoul((const char *)v, &end, 0);
        if (errno != 0 || end == (char *)v || *end != 0 || *ret > max)
                return -EINVAL;
        return 0;
}

/* <hostdev mode='subsystem' type='pci'>, and <interface type='hostdev'> (an SR-IOV VF given as a
 * network interface: libvirt assigns it through VFIO just the same). */
static bool is_pci_hostdev(xmlNode *n) {
        if (name_is(n, "hostdev"))
                return attribute_is(n, "mode", "subsystem", "subsystem") && attribute_is(n, "type", "pci", "");
        return name_is(n, "interface") && attribute_is(n, "type", "hostdev", "");
}

static int hostdev_address(xmlNode *hostdev, char **ret, char **ret_message) {
        xmlNode *source = child(hostdev, "source"), *address = source ? child(source, "address") : NULL;
        const char *what = name_is(hostdev, "interface") ? "<interface type='hostdev'>" : "PCI <hostdev>";
        unsigned long domain, bus, slot, function;

        if (!address) {
                *ret_message = strprintf("a %s (line %ld) has no <source><address>", what, xmlGetLineNo(hostdev));
                return -EINVAL;
        }
        /* An interface's source address says its bus; only PCI is a VFIO device (type='usb' is not). */
        if (!attribute_is(address, "type", "pci", "pci")) {
                *ret_message = strprintf("the %s source address on line %ld is not a PCI address (type='pci')", what,
                                         xmlGetLineNo(address));
                return -EINVAL;
        }
        if (address_part(address, "domain", 0xffff, true, &domain) < 0 ||
            address_part(address, "bus", 0xff, false, &bus) < 0 ||
            address_part(address, "slot", 0x1f, false, &slot) < 0 ||
            address_part(address, "function", 0x7, false, &function) < 0) {
                *ret_message = strprintf("the %s source address on line %ld is not a PCI address "
                                         "(domain 0-0xffff, bus 0-0xff, slot 0-0x1f, function 0-7)",
                                         what, xmlGetLineNo(address));
                return -EINVAL;
        }
        *ret = strprintf("%04lx:%02lx:%02lx.%lx", domain, bus, slot, function);
        return *ret ? 0 : -ENOMEM;
}

static char *text_of(const xmlNode *parent, const char *name) {
        xmlNode *n = child(parent, name);
        _cleanup_(xmlFreep) xmlChar *v = n ? xmlNodeGetContent(n) : NULL;

        return v ? strdup((const char *)v) : NULL;
}

int domain_xml_parse(const char *xml, size_t size, DomainXml *ret, char **ret_message) {
        _cleanup_(xmlFreeDocp) xmlDocPtr doc = NULL;
        _cleanup_(strv_freep) char **addresses = calloc(1, sizeof(char *));
        size_t n = 0;
        xmlNode *root, *devices;
        int r;

        if (!addresses)
                return -ENOMEM;
        if (size > INT32_MAX) {
                *ret_message = strprintf("the domain XML is too large");
                return -EBADMSG;
        }
        /* No network, no entities: the XML comes from libvirt, but it describes what a user wrote. */
        doc = xmlReadMemory(xml, (int)size, "domain.xml", NULL,
                            XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
        if (!doc) {
                const xmlError *e = xmlGetLastError();
                const char *why = e && e->message ? e->message : "unreadable";

                *ret_message = strprintf("the domain XML is malformed: line %d: %.*s", e ? e->line : 0,
                                         (int)strcspn(why, "\n"), why);
                return -EBADMSG;
        }
        root = xmlDocGetRootElement(doc);
        if (!root || !name_is(root, "domain")) {
                *ret_message = strprintf("the XML is not a libvirt domain (its root element is <%s>)",
                                         root ? (const char *)root->name : "");
                return -EINVAL;
        }

        devices = child(root, "devices");
        for (xmlNode *h = devices ? devices->children : NULL; h; h = h->next) {
                _cleanup_(freep) char *address = NULL;

                if (!is_pci_hostdev(h))
                        continue;
                r = hostdev_address(h, &address, ret_message);
                if (r < 0)
                        return r;
                if (strv_contains(addresses, address))
                        continue;
                r = strv_push(&addresses, &n, address);
                if (r < 0)
                        return r;
                TAKE_PTR(address);
        }

        *ret = (DomainXml){
                .name = text_of(root, "name"),
                .uuid = text_of(root, "uuid"),
                .addresses = TAKE_PTR(addresses),
        };
        return 0;
}

void domain_xml_done(DomainXml *d) {
        free(d->name);
        free(d->uuid);
        strv_free(d->addresses);
        *d = (DomainXml){};
}
