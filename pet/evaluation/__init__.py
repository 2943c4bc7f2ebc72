"""The evaluation layer: one evaluator (in memory and streamed), model selection (none / dev / cv /
multisplit) and label-word search scored by cross-validation."""

from .evaluator import evaluate, fit_evaluate, zero_shot_report

__all__ = ["evaluate", "fit_evaluate", "zero_shot_report"]
