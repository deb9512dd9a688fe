"""The web interface (Bottle + Jinja2)."""
