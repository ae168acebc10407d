"""``python -m harness.train``: the trainer without the main CLI (same options as ``harness train``)."""
import sys

from harness.train.command import main

sys.exit(main())
