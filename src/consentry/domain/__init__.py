"""The pure core: events, purposes and legal bases, notices, regimes, decide(). Stdlib only."""
