"""The run ledger: sync runs (the queue workers claim with leases), stream state and progress."""
