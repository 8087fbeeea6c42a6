"""What every Taskforce process shares: settings, the domain, persistence, LLM access,
tools, the Celery app and the CLI."""
