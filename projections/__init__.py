"""Read models rebuilt from the event store alone, and the queries that read them."""
