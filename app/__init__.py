"""Entry points: the composition root, the command line and the HTTP API over the ledger's queries."""
