"""`python -m cmrelay_cli` runs the `cmrelay` command."""

import sys

from cmrelay_cli.main import main

sys.exit(main())
