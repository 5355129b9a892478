"""Running models: the worker processes, the backends behind ``Runner``,
generation settings and comparisons of several runs at once.

Kept free of imports: ``python -m workbench.engine.running.cpu`` runs with
the bare system Python before any dependency is installed (see the Makefile).
"""
