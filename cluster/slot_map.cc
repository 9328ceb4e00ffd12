#include "cluster/slot_map.h"  // implementation pending
