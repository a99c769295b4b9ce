"""The HTTP edge: webhooks from the notes pipeline, meeting status, and backfill sources."""
