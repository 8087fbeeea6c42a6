"""LLM access: the provider interface, the roles built on it (planner, validator,
synthesizer), pricing, and the offline ``sim`` provider."""
