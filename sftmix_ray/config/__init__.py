"""Configuration: the sweep and search-space schemas, the trial point, and loading (YAML →
overrides → one validation). Everything downstream receives these typed objects."""

from .load import ConfigError, load_sweep, read_yaml, validate_data
from .model import LabPretrainConfig, ModelConfig, TinyModelConfig
from .point import TrialPoint
from .schema import (
                     ABILITY_NAMES,
                     BenchConfig,
                     CodeBenchConfig,
                     DomainConfig,
                     EvaluateConfig,
                     JudgeConfig,
                     LoraConfig,
                     PruneConfig,
                     SearchConfig,
                     Strict,
                     SweepConfig,
                     TrackingConfig,
                     TrainConfig,
)
from .space import SearchSpace

__all__ = ["ABILITY_NAMES", "BenchConfig", "CodeBenchConfig", "ConfigError", "DomainConfig",
           "EvaluateConfig", "JudgeConfig", "LabPretrainConfig", "LoraConfig", "ModelConfig",
           "PruneConfig",
           "SearchConfig", "SearchSpace", "Strict", "SweepConfig", "TinyModelConfig",
           "TrackingConfig", "TrainConfig", "TrialPoint", "load_sweep", "read_yaml",
           "validate_data"]
