"""pytest fixtures shared by tests/integration and tests/e2e (imported by their conftest.py)."""
import pytest

from harness import Cluster, require_binary


@pytest.fixture
def cluster():
    """A fresh 3-master/3-replica loopback cluster, torn down even when the test fails."""
    require_binary("redis-server")
    c = Cluster(masters=3, replicas=1)
    try:
        yield c
    finally:
        c.down()


@pytest.fixture
def three_masters_no_replicas():
    """A fresh 3-master loopback cluster without replicas (masters are added by the tests)."""
    require_binary("redis-server")
    c = Cluster(masters=3, replicas=0)
    try:
        yield c
    finally:
        c.down()
