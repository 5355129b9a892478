"""Dialogs: the model picker, generation settings and help."""
