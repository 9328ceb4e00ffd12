import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "pylib"))

from fixtures import cluster, three_masters_no_replicas  # noqa: E402,F401  (fixtures pytest injects by name)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "core: the core integration set, run again on every server of the version "
        "matrix (tests/CMakeLists.txt)")
