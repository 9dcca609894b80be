"""The staff console: server-rendered pages for marketing and support staff."""
