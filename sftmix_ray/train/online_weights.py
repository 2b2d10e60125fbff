"""Domain weights that move during training: the update rules of the `online` strategy.

Two methods, each a few lines of numpy, written by hand (no maintained library implements
either as a reusable update; the papers' reference code is training-framework specific):

- ``exp3``: ODM, Albalak, Pan, Raffel and Wang 2023, "Efficient Online Data Mixing For Language
  Model Pre-Training" (arXiv 2312.02406). Each domain is an arm of an EXP3 bandit whose reward
  is the domain's training loss (a domain still poorly fit is worth more draws), importance
  weighted by the probability of drawing it and smoothed by a moving average (ODM's 0.9). The
  weights are the softmax of the step size × rewards, tilted by the prior (the searched ratio),
  mixed with the uniform distribution. ODM decays its exploration rate with the step; here the
  mix-in is the fixed `smoothing`, so the floor is a knob the search can set.
- ``doremi``: DoReMi's Group-DRO step, Xie, Pham, Dong, Du, Liu, Lu, Liang, Le, Ma and Yu 2023,
  "DoReMi: Optimizing Data Mixtures Speeds Up Language Model Pretraining" (NeurIPS 2023,
  arXiv 2305.10429), Algorithm 1: per-domain excess loss over a reference model, clipped at 0,
  is an exponentiated-gradient step on the log weights, then smoothed with the uniform
  distribution (their c = 1e-3). DoReMi trains a proxy and keeps the *average* weights for a
  second run; here the weights steer the SFT run itself (an online DoReMi), and the average is
  reported as the static mixture to compare against.

Both keep every weight at least `smoothing / K` (K domains) and the weights on the simplex.
The update sees domain-mean losses only, so it is the same on every rank given the same
all-reduced losses; rank 0 decides and broadcasts anyway (train.online_loop).
"""

from __future__ import annotations

import numpy as np

REWARD_EMA = 0.9  # ODM's smoothing of each arm's reward
# With smoothing 0 a domain the prior leaves out has weight 0: never drawn, but divided by and
# logged all the same; this keeps those finite (found by the property test).
TINY = 1e-12


def smooth(weights: np.ndarray, smoothing: float) -> np.ndarray:
    """(1 - c)·w + c/K: on the simplex, no weight below c/K."""
    w = np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    return (1.0 - smoothing) * w + smoothing / len(w)


def _softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max())
    return z / z.sum()


class DomainWeights:
    """The weights of one online stage. `update(losses, reference)` takes each domain's mean
    token loss over the last interval (NaN: not drawn in it) and, for doremi, the reference
    model's on the same tokens; it returns the new weights."""

    def __init__(self, method: str, prior: np.ndarray, step_size: float, smoothing: float):
        if method not in ("exp3", "doremi"):
            raise ValueError(f"unknown online method {method!r} (exp3 or doremi)")
        if not 0 <= smoothing < 1 or step_size <= 0:
            raise ValueError(f"need 0 <= smoothing < 1 and step_size > 0, got {smoothing}, "
                             f"{step_size}")
        prior = np.asarray(prior, dtype=np.float64)
        if prior.ndim != 1 or len(prior) == 0 or (prior < 0).any() or prior.sum() <= 0:
            raise ValueError(f"the prior needs non-negative shares with a positive sum: {prior}")
        self.method, self.eta, self.c = method, float(step_size), float(smoothing)
        # the prior, floored: a domain the ratio left out can still be drawn and earn weight
        self.weights = smooth(prior, self.c)
        # exp3's weights are smooth(softmax(log prior + η·rewards)): the prior itself here, so
        # that with no reward yet they are the initial weights (not smoothed twice)
        self.log_prior = np.log(np.maximum(prior / prior.sum(), TINY))
        self.state = np.zeros(len(prior))  # exp3: smoothed rewards; doremi: summed excess

    def update(self, losses, reference=None) -> np.ndarray:
        losses = np.asarray(losses, dtype=np.float64)
        seen = np.isfinite(losses)
        if self.method == "exp3":
            reward = np.where(seen, np.nan_to_num(losses) / np.maximum(self.weights, TINY), 0.0)
            self.state = np.where(seen, REWARD_EMA * self.state + (1 - REWARD_EMA) * reward,
                                  self.state)
            self.weights = smooth(_softmax(self.log_prior + self.eta * self.state), self.c)
        else:  # DoReMi's Algorithm 1, step by step from the last (smoothed) weights
            if reference is None:
                raise ValueError("doremi needs the reference model's losses")
            excess = np.where(seen, np.maximum(np.nan_to_num(losses) -
                                               np.nan_to_num(np.asarray(reference)), 0.0), 0.0)
            self.state = self.state + excess
            log_w = np.log(np.maximum(self.weights, TINY))
            self.weights = smooth(_softmax(log_w + self.eta * excess), self.c)
        return self.weights.copy()


def draw_domains(weights: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """The domain of each of `n` draws (indices into the weights), from a generator every rank
    seeds alike, so every rank agrees on a global batch's composition."""
    return rng.choice(len(weights), size=n, p=weights / weights.sum())
