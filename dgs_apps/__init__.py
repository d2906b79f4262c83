"""End-user applications that combine the stages: they sit above ``pipeline``, ``dgs_core`` and
``benchmark`` and may import all three (none of those imports this package)."""
