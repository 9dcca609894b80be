"""The self-service pages people reach from every message: preferences, one-click
unsubscribe, "send me my link" and double opt-in. Server-rendered, no JavaScript needed.

`links` holds what the flows share (the signed link followed, the visit, the form token);
each flow is one module with its own router, gathered into one by `routes` for the app.
May import `hub.web` and the layers below the web it needs (the runtime, the services, the
models, the domain, link tokens, schemas, fields); never the API or the console.
"""
