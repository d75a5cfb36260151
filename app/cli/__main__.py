"""`python -m app.cli`: the same as the `consent-ledger` script."""

import sys

from app.cli import main

sys.exit(main())
