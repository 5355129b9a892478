"""The engine: models, workers, generation and token budgets.

Nothing here imports the UI toolkit; the terminal app and the headless CLI
both sit on top of this package.
"""
