from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
# GSM8K train and test (OpenAI, MIT license beside them): inside the repository, so a clone
# passes its tests with nothing beside it.
GSM8K = ROOT / "tests" / "fixtures" / "gsm8k"


@pytest.fixture
def write_sweep(tmp_path):
    """Write a small lab sweep (and its space) under tmp_path; `changes` patch the sweep dict."""

    def write(space: dict | None = None, **changes) -> Path:
        space = space or {
            "domains": ["math", "code", "general"], "specialized": ["math", "code"],
            "amount": {"low": 60, "high": 120},
            "strategies": {"multi_task": {}, "dmt": {"k": [0.25]}},
        }
        (tmp_path / "space.yaml").write_text(yaml.safe_dump(space))
        sweep = {
            "name": "t", "storage": str(tmp_path / "runs"),
            "domains": {"math": {"source": "lab", "format": "gsm8k", "pool": 200},
                        "code": {"source": "lab", "format": "alpaca", "pool": 200},
                        "general": {"source": "lab", "format": "sharegpt", "pool": 200}},
            # a lab base model pretrained on a few hundred documents: the default path, cheaply
            "model": {"tiny": {"hidden_size": 32, "intermediate_size": 64, "layers": 1,
                               "heads": 2, "max_positions": 256,
                               "pretrain": {"docs": 200, "batch_size": 16}},
                      "lab_vocab_size": 400},
            "train": {"lr": 3e-3, "epochs": 1, "batch_size": 8, "max_length": 160},
            "evaluate": {"math": {"n": 4, "max_new_tokens": 16},
                         "code": {"n": 4, "max_new_tokens": 16, "timeout_s": 3},
                         "general": {"n": 4, "max_new_tokens": 8}},
            "search": {"space": str(tmp_path / "space.yaml"), "num_samples": 2, "seed": 0},
            "tracking": {"uri": f"sqlite:///{tmp_path / 'mlflow.db'}"},
        }
        for key, value in changes.items():
            sweep[key] = value
        path = tmp_path / "sweep.yaml"
        path.write_text(yaml.safe_dump(sweep))
        return path

    return write


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """An untrained tiny Llama and the lab tokenizer saved as a local model directory: the shape
    of a hub checkpoint, built offline."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from sftmix_ray.config.presets import LAB_FORMATS
    from sftmix_ray.data import lab
    from sftmix_ray.data.formats import to_messages
    from sftmix_ray.data.template import VicunaTemplate
    from sftmix_ray.data.tokenizer import train_lab_tokenizer

    out = tmp_path_factory.mktemp("tiny-model")
    texts = [t for d in lab.LAB_DOMAINS for r in lab.lab_train(d, 300)
             for t, _ in VicunaTemplate().segments(to_messages(r, LAB_FORMATS[d]))]
    tok = train_lab_tokenizer(texts, 400, out)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                      num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                      max_position_embeddings=512, bos_token_id=tok.bos_token_id,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                      tie_word_embeddings=True)
    LlamaForCausalLM(cfg).save_pretrained(str(out))
    return out


# The team's services, one set per test session and started only by the tests that ask for them:
# PostgreSQL (Optuna studies, MLflow's backend store), an S3 endpoint (MLflow's artifacts) and an
# MLflow tracking server, all on loopback, stopped at the end even when a test fails.
PG_PASSWORD = "sftmix-pg-Pa55word"


@pytest.fixture(scope="session")
def team_services(tmp_path_factory):
    from types import SimpleNamespace

    from tests.services import MLflowServer, Moto, Postgres

    started = []
    try:
        pg = Postgres(PG_PASSWORD)
        started.append(pg)
        pg.start()
        for db in ("mlflow", "optuna"):
            pg.create_database(db)
        s3 = Moto("sftmix-team")
        started.append(s3)
        # the server reads its database password from PGPASSWORD, as libpq does: not in a URL
        server = MLflowServer(pg.url("mlflow"), "s3://sftmix-team/mlflow",
                              {**s3.env, "PGPASSWORD": PG_PASSWORD},
                              log=tmp_path_factory.mktemp("mlflow-server") / "server.log")
        started.append(server)
        server.start()
        yield SimpleNamespace(pg=pg, s3=s3, mlflow=server)
    finally:
        for service in reversed(started):
            service.stop() if isinstance(service, MLflowServer) else service.close()


def pytest_collection_modifyitems(items):
    """Tests marked `prunes` run last. A trial stopped by ASHA leaves its Ray Train worker
    holding its CPU in the Ray session (Ray 2.x Train v2 under Tune), so a later sweep in the
    same session waits for workers until the worker group's start times out, again and again;
    every test in a process shares one session. Sorting is stable: the rest keep their order."""
    items.sort(key=lambda item: item.get_closest_marker("prunes") is not None)
