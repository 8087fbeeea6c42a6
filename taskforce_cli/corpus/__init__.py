"""A small bundled sample knowledge base for the ``search`` tool.

``world_facts.jsonl`` holds one document per line, ``{"title", "body", "source"}``:
public world facts (depths of ocean trenches, lengths of rivers, heights of mountains,
towers and statues, areas of deserts, oceans and forests, populations and areas of
countries and US states, top speeds of animals) plus a few films and people. Each
body states its key quantity first, in the unit a question expects (metres, km, km²,
people, km/h), because ``search`` reports the first number of its best hit as
``value``. Figures are rounded. Load it with ``taskforce ingest``.
"""
