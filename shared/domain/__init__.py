"""The DAG model: goals, plans, steps, step runs and episodes, and plan validation."""
