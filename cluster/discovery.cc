#include "cluster/discovery.h"  // implementation pending
