"""Small shared utilities: atomic file I/O, JSON and JSONL readers, versions, defaults, where the
shipped files live. Nothing here knows about prompts, models or methods."""
