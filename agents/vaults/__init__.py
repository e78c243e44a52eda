"""GLP delta-neutral hedging vaults (``spec/glp-vault.md``): the basket, the rebalance steps,
the vault family agent."""
