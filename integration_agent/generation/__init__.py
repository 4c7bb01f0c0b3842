"""Generated playbooks: an LLM writes a plan as JSON, intagent gates it and renders the YAML itself."""
