import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "pylib"))

from harness import Cluster, require_binary  # noqa: E402


@pytest.fixture
def cluster():
    require_binary("redis-server")
    c = Cluster(masters=3, replicas=1)
    try:
        yield c
    finally:
        c.down()
