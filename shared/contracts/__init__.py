"""Integration-event contracts: the only coupling between the services."""
