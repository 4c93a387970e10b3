"""The auction simulator client: multi-slot GSP over the world, scored by the live service, with a
closed retraining loop through the service's admin API (docs/auction.md)."""
