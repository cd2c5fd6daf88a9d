"""interops.notify.v1, the outbox dispatch and the notices the backbone sends on topics."""
