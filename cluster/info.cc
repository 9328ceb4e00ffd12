#include "cluster/info.h"  // implementation pending
