"""The staff console: server-rendered pages for marketing and support staff, a module per
resource: sign-in, dashboard, contacts, topics, captures and bounces (`routes`), campaigns
(`campaign_pages`), templates (`template_pages`). They share staff sessions (`auth`), the page
renderer (`pages`) and the POST check and error wording of their forms (`forms`).

May import every layer below the web and `hub.web`; not the API or the self-service pages.
"""
