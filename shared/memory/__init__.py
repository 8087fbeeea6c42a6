"""Session and episodic memory: goal templates and plan reuse, session compaction."""
