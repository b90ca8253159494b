"""Lines: named agents (per-call settings) and the routes from a called party to an agent."""
