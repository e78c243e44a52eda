"""Service agents: keepers, liquidators, the admin."""
