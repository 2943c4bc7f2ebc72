"""Data: the task registry, table reading, few-shot splits and unlabelled pools, own-data tasks.

- :mod:`pet.data.registry` — ``TaskSpec`` from ``data/tasks/*.json``; the data root; a task's PVPs
- :mod:`pet.data.tables` — CSV/TSV/JSONL(.gz) files -> ``Example`` lists
- :mod:`pet.data.fewshot` — whole splits, K-per-class (train, dev) splits, unlabelled pools
- :mod:`pet.data.stream` — the one reader of a user's own data (a file or ``hf:`` dataset), in chunks
- :mod:`pet.data.hub` — ``hf:NAME[:CONFIG]``: Hugging Face datasets (hub, ``save_to_disk``, local files)
- :mod:`pet.data.owndata` — a task built on the fly for a user's own data
"""

from .fewshot import few_shot, load_examples, unlabelled_pool
from .owndata import own_data_task, parse_field_map
from .registry import TaskSpec, list_tasks, load_task, resolve_data_dir, task_pvps
from .tables import load_table

__all__ = [
    "TaskSpec",
    "few_shot",
    "list_tasks",
    "load_examples",
    "load_table",
    "load_task",
    "own_data_task",
    "parse_field_map",
    "resolve_data_dir",
    "task_pvps",
    "unlabelled_pool",
]
