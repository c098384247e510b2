"""``python -m mamlkit``: the command line."""

import sys

from mamlkit.cli.main import main

sys.exit(main())
