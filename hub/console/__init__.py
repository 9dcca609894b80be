"""The staff console: server-rendered pages for marketing and support staff, a module per
resource: sign-in, dashboard and bounces (`routes`), what the capture sink kept
(`capture_pages`), campaigns (`campaign_pages`), templates (`template_pages`), the audience
(`audience`: contacts, their subscriptions and preferences, imports run in the background by
`import_runner`). They share staff sessions (`auth`), the page renderer (`pages`) and the POST
check and error wording of their forms (`forms`; the audience pages' GOV.UK-style field
errors: `audience_forms`).

May import every layer below the web and `hub.web`; not the API or the self-service pages.
"""
