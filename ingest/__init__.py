"""The Segment-compatible ingest: validate, queue durably in Redis, acknowledge."""
