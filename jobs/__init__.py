"""RQ jobs, worker setup, reconciliation, partner REST clients and the entity store."""
