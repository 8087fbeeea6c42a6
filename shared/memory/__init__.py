"""Agent memory: long-term facts (``store``: remember, recall, forget, hybrid search) and
their cleanup pass (``cleanup``); session and episodic memory (``sessions``,
``compaction``, and ``templates`` for plan reuse)."""
