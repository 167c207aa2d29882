import sys
from pathlib import Path

# edgebuild_testlib (the tiny recipe and the CLI runner) is shared by tests in several folders.
sys.path.insert(0, str(Path(__file__).parent))
