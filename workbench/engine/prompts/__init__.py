"""Prompts: chat templates, prompt templates with few-shot variants, token
budgets, sweeps, and the plan that turns them into panels."""
