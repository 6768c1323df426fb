/* `iommud --dump`, through the API's messages and the one protobuf -> JSON mapping. */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "inventory.h"

/* Streamed: the JSON of a large host is written one item at a time, never held whole. */
int inventory_dump(const Inventory *inv, FILE *f, bool compact);
