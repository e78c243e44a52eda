"""Trading agents: noise and momentum traders, arbitrageurs, whales."""
