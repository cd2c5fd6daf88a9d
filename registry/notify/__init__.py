"""Notifications: subscriptions, contacts, templates, sending, the outbox and acknowledgements."""
