"""What every exchange design shares: account arrays, lot and number checks, statuses, the
event sink, the accounting check. Public names only: venues build on these."""
