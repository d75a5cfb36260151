"""consent-ledger: the domain (events, the subject aggregate, the event store) and its entry points."""
