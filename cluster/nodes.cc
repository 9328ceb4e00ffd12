#include "cluster/nodes.h"  // implementation pending
