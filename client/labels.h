/* How iommuctl names devices, groups and their status for people: one spelling for every view. */
#pragma once

#include <stdbool.h>

#include "iommud.pb-c.h"

#define COLOR_GREEN "\033[32m"
#define COLOR_RED "\033[31m"
#define COLOR_YELLOW "\033[33m"
#define COLOR_BLUE "\033[34m"
#define COLOR_BOLD "\033[1m"
#define COLOR_DIM "\033[2m"
#define COLOR_RESET "\033[0m"

/* 's', or "-" when NULL or empty. */
const char *or_dash(const char *s);

/* pci.ids names, else the hex IDs ("class 030000", "10de", "2204"), else "-"; 'buf' holds the hex. */
const char *device_class_label(const Iommud__V1__Device *d, char buf[static 16]);
const char *device_vendor_label(const Iommud__V1__Device *d, char buf[static 16]);
const char *device_name_label(const Iommud__V1__Device *d, char buf[static 16]);
/* Green for a VFIO driver, dim for none, NULL for the others. */
const char *driver_color(const char *driver);

/* "host", "vfio_ready", ... as in --json; "-" while the daemon reports none. */
const char *group_state_label(const Iommud__V1__Group *g);
const char *group_state_color(const Iommud__V1__Group *g);
/* "libvirt:NAME", "client:IDENTITY", or "-": a new string, NULL on OOM. */
char *group_owner_label(const Iommud__V1__Group *g);
