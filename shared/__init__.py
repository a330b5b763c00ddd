"""Shared code of the three Fangpin services: contracts, messaging, db, settings, problems."""
