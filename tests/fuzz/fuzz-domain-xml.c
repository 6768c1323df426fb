/* libFuzzer target: the libvirt domain XML reader that both the libvirt hook (the XML on its stdin)
 * and the daemon's libvirt tracker (virDomainGetXMLDesc) use. */
#include <stdint.h>
#include <stdlib.h>
#include <syslog.h>
#include <string.h>

#include "domain-xml.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(freep) char *message = NULL;
        DomainXml d = {};
        int r;

        log_set_max_level(LOG_CRIT);
        r = domain_xml_parse((const char *)data, size, &d, &message);
        if (r >= 0) {
                if (!d.addresses)
                        abort();
                /* Addresses are canonical "dddd:bb:ss.f". */
                for (char **a = d.addresses; *a; a++)
                        if (strlen(*a) != 12 || (*a)[4] != ':' || (*a)[7] != ':' || (*a)[10] != '.')
                                abort();
        } else if (!message)
                abort();
        domain_xml_done(&d);
        return 0;
}
