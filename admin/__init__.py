"""The admin HTTP API and the on-call web page for the dead-letter queue (`cmrelay admin`)."""
