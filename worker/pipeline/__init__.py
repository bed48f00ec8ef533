"""The pipeline every worker runs: accept, schedule, deliver, commit (all state in Redis)."""
