"""Built-in method plugins. Each module registers itself with ``@register_method``."""
