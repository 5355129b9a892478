"""Models: GGUF headers, the catalog of local files, the default models and
the Hugging Face Hub."""
