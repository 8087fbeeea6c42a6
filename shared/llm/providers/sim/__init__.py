"""The offline ``sim`` LLM: a deterministic provider and the heuristics behind it."""
