/* Reads what iommud needs from a libvirt domain XML: name, UUID and the PCI host devices. */
#pragma once

#include <stddef.h>

typedef struct DomainXml {
        char *name;       /* NULL when the XML has none */
        char *uuid;       /* NULL when the XML has none */
        char **addresses; /* NULL-terminated, "0000:00:02.0", each once, in document order */
} DomainXml;

/* <hostdev mode='subsystem' type='pci'> and <interface type='hostdev'> (a VF given as a network
 * interface) count; their <source><address domain= bus= slot= function=/> is the host device. Malformed XML is -EBADMSG, a root other than <domain> or an
 * address out of range -EINVAL, both with *ret_message saying why (the caller frees it). */
int domain_xml_parse(const char *xml, size_t size, DomainXml *ret, char **ret_message);
void domain_xml_done(DomainXml *d);
