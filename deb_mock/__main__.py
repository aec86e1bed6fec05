"""``python -m deb_mock`` runs the command line."""

import sys

from deb_mock.cli import main

sys.exit(main())
