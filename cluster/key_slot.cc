#include "cluster/key_slot.h"  // implementation pending
