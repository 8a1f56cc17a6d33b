"""`python -m rnnbench.perf` (`make perf`); the flags are rnnbench/perf/cli.py's."""
import sys

from rnnbench.perf.cli import main

sys.exit(main())
