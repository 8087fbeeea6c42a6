"""Worker processes: the Celery tasks that plan goals and run their steps."""
