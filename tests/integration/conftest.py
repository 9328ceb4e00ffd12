import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "pylib"))

from fixtures import cluster  # noqa: E402,F401  (the fixture pytest injects by name)
