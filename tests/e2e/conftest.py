import sys
from pathlib import Path

# test_boards reuses the tiny recipe and CLI helper of test_pipeline.
sys.path.insert(0, str(Path(__file__).parent))
