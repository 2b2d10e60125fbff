"""The sweep file's schema: typed, frozen, strict. Unknown keys are errors (with a did-you-mean,
from `load`), and each field says what it means, so the schema is the reference for sweep files."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ..storage import is_uri
from .abilities import HeldoutLossConfig, LmEvalAbility, ability_name_problems
from .checks import JUDGE_SCHEMES, TRACKING_SCHEMES, metric_problems, storage_problems, uri_problem
from .model import ModelConfig
from .presets import FORMATS, LAB_FORMATS, PRESETS
from .proxies import ProxySource
from .strict import Strict

ABILITY_NAMES = ("math", "code", "general")  # what a trial evaluates (evaluate.abilities)


class DomainConfig(Strict):
    preset: Literal[tuple(PRESETS)] | None = Field(  # type: ignore[valid-type]
        None, description="one of the study's datasets by name; fills source and format")
    source: str | None = Field(None, description="'lab', a Hugging Face hub id, a local JSON/JSONL/"
                               "Parquet/Arrow file or directory, or an http(s) URL of such a file")
    format: Literal[FORMATS] | None = None  # type: ignore[valid-type]
    subset: str | None = Field(None, description="hub: the dataset's config name")
    split: str = "train"
    data_files: str | list[str] | None = Field(None, description="hub: which files to read")
    revision: str | None = Field(None, description="hub: a commit or tag, for reproducibility")
    pool: int | None = Field(None, gt=0, description="lab: training samples generated "
                             "(default 4000)")
    upsample: bool = Field(False, description="allow a mixture to ask for more samples than the "
                           "domain has, by repeating it; otherwise that is an error")
    overlong: Literal["truncate", "skip"] = Field(
        "truncate", description="samples longer than train.max_length: cut (counted) or skip")
    mean_tokens: float | None = Field(None, gt=0, description="the domain's mean tokens per "
                                      "sample, for the compute estimate before launch "
                                      "(default 200, stated as an assumption)")

    @model_validator(mode="before")
    @classmethod
    def _expand_preset(cls, data):
        if isinstance(data, dict) and data.get("preset") in PRESETS:
            return {**PRESETS[data["preset"]], **data}
        return data

    @model_validator(mode="after")
    def _complete(self):
        if self.source is None:
            raise ValueError("give a 'source' ('lab', hub id, file or URL) or a 'preset' "
                             f"({', '.join(PRESETS)})")
        if self.source != "lab":
            if self.format is None:
                raise ValueError(f"'format' is required for source {self.source!r} "
                                 f"(one of {', '.join(FORMATS)})")
            if self.pool is not None:
                raise ValueError("'pool' applies only to source 'lab'")
        return self

    @property
    def is_lab(self) -> bool:
        return self.source == "lab"


class LoraConfig(Strict):
    r: int = Field(8, gt=0)
    alpha: int = Field(16, gt=0)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "k_proj", "v_proj",
                                                               "o_proj"])


class TrainConfig(Strict):
    lr: float = Field(2e-5, gt=0)
    epochs: int = Field(3, gt=0)
    batch_size: int = Field(16, gt=0)
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float | None = Field(1.0, gt=0)
    max_length: int = Field(512, gt=8)
    seed: int = 0
    workers: int = Field(1, gt=0, description="Ray Train workers per trial")
    cpus_per_worker: float = Field(1, gt=0)
    gpus_per_worker: float = Field(0, ge=0)
    threads_per_worker: int | None = Field(None, gt=0, description="torch threads; default: CPUs")
    grad_accum: int = Field(1, gt=0, description="micro-batches per optimizer step")
    dtype: Literal["auto", "float32", "bfloat16"] = Field(
        "auto", description="auto: bfloat16 on GPUs that support it, float32 on CPU")
    gradient_checkpointing: bool = False
    packing: bool | None = Field(None, description="pack samples into rows of at most "
                                 "max_length tokens (attention kept within each sample; a "
                                 "micro-batch still holds batch_size samples, so the global "
                                 "batch is the same); otherwise batches are grouped by length. "
                                 "Default: on GPUs, off on CPU")
    parallel: Literal["ddp", "fsdp"] = Field("ddp", description="how workers share a model: "
                                             "DDP replicas, or FSDP shards for models that do "
                                             "not fit one GPU")
    lora: LoraConfig | None = Field(None, description="train LoRA adapters (peft) instead of "
                                    "every weight")
    prefix_cache: bool = Field(True, description="train a stage prefix shared by several trials "
                               "(e.g. DMT's stage 1) once per sweep, and start later trials "
                               "from its checkpoint")
    save_model: bool = Field(True, description="keep the trial's final weights (and tokenizer) "
                             "in its Ray Train checkpoint, loadable by `sftmix eval --model`")
    save_dtype: Literal["bfloat16", "float32"] = Field(
        "bfloat16", description="dtype of the kept weights: bfloat16 halves the disk a sweep "
        "needs (13.5 GB instead of 27 for a 7 B model); float32 keeps the master weights exactly")
    collective_timeout_s: float = Field(
        1800, gt=0, description="how long a worker waits in one collective (all-gather, "
        "broadcast) before the trial fails with a named timeout instead of hanging")
    # Speed on GPUs (train/speed.py). Each defaults to on for a CUDA device and off on CPU, where
    # training stays exactly as it was before these options existed.
    attention: Literal["auto", "eager", "sdpa", "flex_attention", "flash_attention_2"] = Field(
        "auto", description="attention kernel (a transformers attn_implementation); auto: "
        "flash_attention_2 on GPUs where the flash-attn package is installed, else sdpa")
    compile: bool | None = Field(None, description="torch.compile each decoder layer; default: "
                                 "on GPUs")
    fused_optimizer: bool | None = Field(None, description="fused AdamW kernel; default: on "
                                         "GPUs")
    chunked_loss: bool | None = Field(None, description="cross-entropy over chunks of tokens, "
                                      "so fp32 logits over the whole vocabulary never exist at "
                                      "once; default: on GPUs")
    expandable_segments: bool = Field(True, description="GPUs: let the CUDA caching allocator "
                                      "grow segments, so varying batch shapes do not fragment "
                                      "memory (PYTORCH_CUDA_ALLOC_CONF); no effect on CPU")
    # Checked before launch (config/memory.py): a sweep whose per-GPU estimate exceeds the GPU
    # is refused by `sftmix validate` and `sftmix run` before anything is downloaded or started.
    gpu_memory_gib: float = Field(80, gt=0, description="GiB per GPU the memory check assumes "
                                  "when it cannot read the GPU (no local GPU, no cluster "
                                  "joined); an 80 GB H100 or A100 is 80")
    skip_memory_check: bool = Field(False, description="launch even when the per-GPU memory "
                                    "estimate exceeds the GPU (for users who measured "
                                    "otherwise); the estimate is still printed")


class BenchConfig(Strict):
    source: str = Field("lab", description="'lab', or a benchmark: for math a GSM8K-format JSONL "
                        "path or a hub id (test split); for code 'humaneval'; for general "
                        "'mt_bench'")
    n: int = Field(64, gt=0, description="evaluation problems (the first n)")
    max_new_tokens: int = Field(64, gt=0)
    samples: int = Field(1, gt=0, description="completions per prompt (pass@k needs k of them)")
    temperature: float = Field(0.0, ge=0, description="0: greedy, as the study evaluated")
    top_p: float = Field(1.0, gt=0, le=1)
    stop: list[str] = Field(default_factory=list, description="cut completions at these strings")

    @model_validator(mode="after")
    def _sampling(self):
        if self.samples > 1 and self.temperature == 0:
            raise ValueError("samples > 1 needs temperature > 0 (greedy gives one completion)")
        return self


class CodeBenchConfig(BenchConfig):
    timeout_s: float = Field(5.0, gt=0)
    k: list[int] = Field(default_factory=lambda: [1], description="pass@k values; the first is "
                         "the 'code' objective")

    @model_validator(mode="after")
    def _k_fits(self):
        if not self.k or min(self.k) < 1 or max(self.k) > self.samples:
            raise ValueError(f"every k must be between 1 and samples ({self.samples}): {self.k}")
        return self


class JudgeConfig(Strict):
    base_url: str = Field(description="an OpenAI-compatible endpoint, e.g. http://host:8000/v1")
    model: str = Field(description="the judge model's name at that endpoint")
    api_key_env: str = Field("SFTMIX_JUDGE_API_KEY", description="env var holding the API key; "
                             "OPENAI_API_KEY is tried next only when base_url is "
                             "https://api.openai.com, never sent to another endpoint")
    timeout_s: float = Field(60.0, gt=0, description="seconds for one request, whole: connect, "
                             "send and the full reply; a grade's tries and waits together get "
                             "(max_retries + 1) times this")
    max_retries: int = Field(4, ge=0)
    max_failed_share: float = Field(0.1, ge=0, le=1, description="a grade the judge fails (a "
                                    "4xx, tries spent, a malformed reply, a deadline) is "
                                    "recorded as -1 and left out of the mean; the evaluation "
                                    "fails when more than this share of grades fail")


class EvaluateConfig(Strict):
    math: BenchConfig = BenchConfig()
    code: CodeBenchConfig = CodeBenchConfig(n=32, max_new_tokens=80)
    general: BenchConfig = BenchConfig(max_new_tokens=32)
    batch_size: int = Field(64, gt=0)
    judge: JudgeConfig | None = Field(None, description="MT-Bench judge; without one, general is "
                                      "an offline reference-based score, labelled as such")
    cache: bool = Field(True, description="reuse scores of identical weights and settings")
    dtype: Literal["auto", "float32", "bfloat16"] = Field(
        "auto", description="generation dtype, on a copy of the weights (what is trained and "
        "saved is untouched); auto: bfloat16 on GPUs that support it, float32 on CPU")
    abilities: dict[str, LmEvalAbility] = Field(default_factory=dict, description="abilities "
                                                "added to the three, by the name a sweep uses")
    heldout_loss: HeldoutLossConfig = HeldoutLossConfig()

    @model_validator(mode="after")
    def _sources(self):
        problems = ability_name_problems(self.abilities)
        if self.code.source not in ("lab", "humaneval"):
            problems.append(f"code.source: {self.code.source!r} is not 'lab' or "
                            f"'humaneval'")
        if self.general.source not in ("lab", "mt_bench"):
            problems.append(f"general.source: {self.general.source!r} is not 'lab' or "
                            f"'mt_bench'")
        if problems:
            raise ValueError("\n".join(problems))
        return self


class PruneConfig(Strict):
    """Stop weak trials early (Ray Tune's ASHA): a trial's objective is evaluated after each
    epoch of its final stage, and trials behind their peers at the same epoch stop there."""

    grace_period: int = Field(1, gt=0, description="epochs of the final stage before a trial "
                              "may be stopped")
    reduction_factor: float = Field(2.0, gt=1, description="keep about 1/reduction_factor of the "
                                    "trials at each rung")


class SearchConfig(Strict):
    space: str = Field(description="a search_spaces/*.yaml file, relative to the sweep file or cwd")
    algorithm: Literal["tpe", "nsga2", "gp", "random", "grid", "surrogate"] = "tpe"
    num_samples: int = Field(8, gt=0, description="trials (for grid: repeats of the full grid)")
    max_concurrent: int = Field(1, gt=0)
    objectives: dict[str, Literal["max", "min"]] = {"math": "max", "code": "max", "general": "max"}
    seed: int = 0
    seeds: list[int] | None = Field(None, min_length=1, description="grid sweeps: run every "
                                    "point once per training seed (overrides train.seed), so "
                                    "reports show mean and spread")

    study_storage: str | None = Field(None, description="Optuna storage URL (RDB, e.g. "
                                      "postgresql://…) on a cluster; default: a journal file "
                                      "beside the Tune experiment")
    warm_start: list[dict] | None = Field(None, description="points tried first (e.g. the "
                                          "study's DMT setting), as {ratio, amount, strategy, k} "
                                          "or {fractions|counts, strategy, k}")
    constraints: dict[str, float] | None = Field(None, description="objective: bound it must "
                                                 "reach (≥ for max objectives, ≤ for min), "
                                                 "through Optuna's constraint API")
    prune: PruneConfig | None = Field(None, description="single-objective sweeps: stop weak "
                                      "trials after an epoch (ASHA)")
    population_size: int | None = Field(None, ge=2, description="nsga2: individuals per "
                                        "generation (Optuna's default: 50)")
    batch_size: int | None = Field(None, ge=1, description="surrogate: proposals per refit of "
                                   "the surrogate (default: max_concurrent, a refit "
                                   "for every trial when one runs at a time)")
    proxies: list[ProxySource] | None = Field(None, description="surrogate: proxy or earlier "
                                              "sweeps whose trials inform the first proposals")

    @model_validator(mode="after")
    def _combinations(self):
        if self.seeds is not None and self.algorithm != "grid":
            raise ValueError("seeds: repeating points over seeds needs algorithm 'grid'")
        if (self.warm_start or self.constraints) and self.algorithm == "grid":
            raise ValueError("algorithm: grid has no sampler for warm_start or constraints to "
                             "steer")
        if self.population_size is not None and self.algorithm != "nsga2":
            raise ValueError(f"population_size: an NSGA-II option; algorithm is "
                             f"{self.algorithm!r}")
        for name in ("batch_size", "proxies"):
            if getattr(self, name) is not None and self.algorithm != "surrogate":
                raise ValueError(f"{name}: a surrogate-search option; algorithm is "
                                 f"{self.algorithm!r}")
        if self.prune is not None and len(self.objectives) != 1:
            raise ValueError(f"prune: pruning compares trials on one objective, and this sweep "
                             f"has {len(self.objectives)} ({', '.join(self.objectives)}); a "
                             f"multi-objective search never tells Optuna a partial result")
        if self.prune is not None and set(self.objectives) - set(ABILITY_NAMES):
            raise ValueError(f"prune: the objective must be an ability evaluated during "
                             f"training ({', '.join(ABILITY_NAMES)}), not "
                             f"{', '.join(self.objectives)}")
        unknown = set(self.constraints or {}) - set(self.objectives)
        if unknown:
            raise ValueError(f"constraints: {sorted(unknown)} are not objectives "
                             f"({', '.join(self.objectives)})")
        return self


class TrackingConfig(Strict):
    uri: str | None = Field(None, description="MLflow tracking URI; default sqlite:///mlflow.db")
    experiment: str | None = Field(None, description="default: the sweep's name")
    outage_wait_s: float = Field(600, ge=0, description="at the sweep's end, how long to wait "
                                 "for a tracking server that is down before leaving its queued "
                                 "writes to `sftmix resume`")


class SweepConfig(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    storage: str = Field("runs", description="where Tune results and Train checkpoints go: a "
                         "directory (NFS on a cluster) or a URI such as s3://bucket/prefix")
    cache_dir: str | None = Field(None, description="a directory every node sees for the caches "
                                  "(tokenized data, stage prefixes, scores); default "
                                  "<storage>/cache; required when storage is a URI")
    domains: dict[str, DomainConfig]
    model: ModelConfig
    train: TrainConfig = TrainConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    search: SearchConfig
    tracking: TrackingConfig = TrackingConfig()

    @model_validator(mode="after")
    def _cross_checks(self):
        if not self.domains:
            raise ValueError("domains: declare at least one domain")
        problems = []
        problems += uri_problem("tracking.uri", self.tracking.uri, TRACKING_SCHEMES)
        if self.evaluate.judge is not None:
            problems += uri_problem("evaluate.judge.base_url", self.evaluate.judge.base_url,
                                    JUDGE_SCHEMES)
        problems += storage_problems(self) + metric_problems(self)
        if is_uri(self.storage) and not self.cache_dir:
            problems.append(f"cache_dir: storage {self.storage!r} is a URI, so the caches need "
                            f"a directory every node sees (e.g. an NFS path)")
        for name, dom in self.domains.items():
            if not dom.is_lab:
                continue
            if name not in LAB_FORMATS:
                problems.append(f"domains.{name}.source: the lab has no domain {name!r} "
                                f"(it has {', '.join(LAB_FORMATS)})")
            elif dom.format not in (None, LAB_FORMATS[name]):
                problems.append(f"domains.{name}.format: the lab's {name} domain is "
                                f"{LAB_FORMATS[name]!r}, not {dom.format!r}")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def for_trial(self, point) -> SweepConfig:
        """The sweep as one trial trains it: the point's seed and searched hyperparameters replace
        `train:` values (lora_r / lora_alpha go into `train.lora`). Only what the point changes
        is validated again: the rest of the sweep was validated once, at load."""
        if point.seed is None and not point.train:
            return self
        train = self.train.model_dump()
        if point.seed is not None:
            train["seed"] = point.seed
        for name, value in (point.train or {}).items():
            if name.startswith("lora_"):
                train["lora"] = {**train["lora"], name.removeprefix("lora_"): value}
            else:
                train[name] = value
        return self.model_copy(update={"train": TrainConfig.model_validate(train)})
