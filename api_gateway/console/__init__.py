"""The web console: server-rendered pages (Jinja2) over the v1 API's data, under
``/console``, with the same API keys (:mod:`api_gateway.console.session`)."""
