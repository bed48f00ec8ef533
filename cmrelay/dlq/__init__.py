"""The dead-letter queue: entries, their store in Redis, and the queries on-call staff run."""
