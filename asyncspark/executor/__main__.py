"""``python -m asyncspark.executor``: an executor process (started by a backend, never by hand)."""

import sys

from .executor import main

sys.exit(main())
