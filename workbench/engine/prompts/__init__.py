"""Prompts: chat templates, prompt templates with few-shot variants, token
budgets and sweeps."""
