"""Where a surrogate search's earlier trials come from: `search.proxies` in a sweep file."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ProxySource(BaseModel):
    """Finished trials the surrogate search learns from before (and beside) this sweep's own:
    a cheaper proxy sweep (a smaller model, fewer samples or epochs) or an earlier sweep."""

    model_config = ConfigDict(extra="forbid", frozen=True)  # as schema.Strict (imported there)

    sweep: str | None = Field(None, description="the proxy sweep's parent run id")
    experiment: str | None = Field(None, description="or every run of an MLflow experiment")
    tracking_uri: str | None = Field(None, description="default: this sweep's tracking.uri")
    fidelity: float = Field(0.5, gt=0, le=1, description="how close to this sweep's setting "
                            "(1 = the same setting; below 1 its trials are a prior mean)")

    @model_validator(mode="after")
    def _one_source(self):
        if (self.sweep is None) == (self.experiment is None):
            raise ValueError("give exactly one of 'sweep' (a run id) or 'experiment' (a name)")
        return self
