"""Procore webhooks: subscriptions, the delivery receiver, applying events, the request budget."""
