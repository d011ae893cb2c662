"""The Webhooks API of the simulated Procore: hooks, triggers, resources, deliveries."""
