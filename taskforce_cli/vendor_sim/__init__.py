"""``taskforce sim-llm``: a loopback HTTP server that speaks OpenAI's and Anthropic's
wire formats and answers like the ``sim`` provider.

Point the real providers at it to exercise the SDKs, retries, rate limits and cost
accounting without a key or a network::

    taskforce sim-llm --port 8765 --fault-rate 500=0.05 --rpm 600
    OPENAI_BASE_URL=http://127.0.0.1:8765/v1 OPENAI_API_KEY=sim ...
    ANTHROPIC_BASE_URL=http://127.0.0.1:8765 ANTHROPIC_API_KEY=sim ...
    OPENAI_COMPATIBLE_BASE_URL=http://127.0.0.1:8765/v1 ...

Modules: ``app`` (routes and the request pipeline), ``formats`` (the two wire formats),
``faults`` (fault injection), ``limits`` (RPM/TPM limits), ``config`` (behaviour),
``server`` (running it, in the foreground or in a thread for tests). The answers come
from :mod:`shared.llm.providers.sim.heuristics`, applied to the data section of the
user message a real model would receive; every answer is marked simulated.
"""
