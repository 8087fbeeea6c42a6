"""Marks by which Taskforce's providers recognise answers of its wire-level simulator.

The simulator (``taskforce sim-llm``) receives exactly what a real model receives: the
system prompt and the user message of :func:`shared.llm.base.render`, whose data
section it parses. No block is added for it.

It marks its responses so that providers report ``simulated=True``: OpenAI-format
responses carry ``system_fingerprint == SIM_FINGERPRINT``, Anthropic-format responses
an ``id`` starting with ``SIM_MESSAGE_ID_PREFIX``. The answer JSON also has
``"simulated": true`` and its texts start with ``[simulated]``.
"""

from __future__ import annotations

SIM_FINGERPRINT = "taskforce-sim"
SIM_MESSAGE_ID_PREFIX = "msg_sim_"
