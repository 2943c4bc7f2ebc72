"""The model layer: ``PromptModel`` (scoring at the mask positions), soft prompts, the ``[CLS]``
classifier, tuning modes (LoRA via peft, BitFit) and the one Hugging Face loading path."""
