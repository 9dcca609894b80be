"""Sandboxed Jinja2 rendering of per-channel, per-locale template parts, compiled once per batch."""

from hub.templates.model import Links, Parts, Rendered, TemplateDoc
from hub.templates.render import CompiledTemplate, Renderer, TemplateError

__all__ = [
    "CompiledTemplate",
    "Links",
    "Parts",
    "Rendered",
    "Renderer",
    "TemplateDoc",
    "TemplateError",
]
