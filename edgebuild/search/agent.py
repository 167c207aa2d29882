"""A small numpy reinforcement-learning agent for layer-by-layer decisions (AMC-style episodes).

An *episode* walks the layers of a network in order: at step ``t`` the environment describes the
layer (and whatever else matters, e.g. the target's budgets) as a state vector, the agent proposes
an action in ``[a_min, 1]`` (a keep ratio), and the environment *takes* it, possibly clipped so the
episode stays feasible. One scalar reward arrives at the end.

The agent is a clipped-surrogate actor-critic (PPO-clip, Schulman et al. 2017) rather than AMC's
DDPG. Why: the reward is terminal and the horizon is a handful of layers, so a Monte-Carlo return
with a learned state-value baseline is exact and unbiased; DDPG would have to bootstrap a critic
Q(s, a) through the environment's clipping (a non-smooth map), which is the fragile part of AMC.
The value baseline V(s) is conditioned on the state (hence on the budget), and the advantages
are centred per environment within a batch, so targets with very different attainable rewards do
not bias each other's advantages the way one moving average would. Exploration is AMC's:
Gaussian noise on the actor's mean with a standard deviation that decays from ``sigma0`` to
``sigma_min`` over the updates; the clip ratio keeps each update close
to the policy that collected the batch (the off-policy correction for the few epochs of reuse).

Environment protocol (duck-typed), used by ``learn`` and ``rollout``::

    env.n_steps                        number of decisions per episode
    env.observe(t, taken) -> ndarray   state at step t, given the actions taken so far
    env.take(t, a, taken) -> float     the action really taken (clipped/rounded) for proposal a
    env.reward(taken) -> float         terminal reward of a complete list of taken actions
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from edgebuild.train.fit import Adam


class MLP:
    """Two tanh hidden layers and a linear output, with hand-written backpropagation."""

    def __init__(self, n_in: int, n_out: int, hidden: int, rng: np.random.Generator, out_scale: float = 0.01):
        sizes = [n_in, hidden, hidden, n_out]
        self.params = {}
        for i in range(3):
            scale = out_scale if i == 2 else np.sqrt(1.0 / sizes[i])
            self.params[f"w{i}"] = rng.normal(0.0, scale, (sizes[i], sizes[i + 1]))
            self.params[f"b{i}"] = np.zeros(sizes[i + 1])
        self.opt: Adam | None = None

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, list]:
        """Outputs for a batch ``x`` (N, n_in) and the activations backward needs."""
        acts = [x]
        for i in range(3):
            x = x @ self.params[f"w{i}"] + self.params[f"b{i}"]
            if i < 2:
                x = np.tanh(x)
            acts.append(x)
        return x, acts

    def backward(self, acts: list, dout: np.ndarray) -> dict[str, np.ndarray]:
        """Gradients of sum(dout * output) with respect to every parameter."""
        grads = {}
        for i in (2, 1, 0):
            grads[f"w{i}"] = acts[i].T @ dout
            grads[f"b{i}"] = dout.sum(axis=0)
            if i:
                dout = (dout @ self.params[f"w{i}"].T) * (1.0 - acts[i] ** 2)
        return grads

    def step(self, grads: dict[str, np.ndarray], lr: float) -> None:
        """One Adam step (the optimiser state lives with the network)."""
        self.opt = self.opt or Adam(lr)
        self.opt.step(self.params, grads, lr)


@dataclass
class Episode:
    """One rollout: the environment's index, states, raw (sampled) and taken actions, reward."""

    env: int
    states: np.ndarray
    raw: np.ndarray
    taken: list[float]
    sigma: float
    reward: float


class PolicyAgent:
    """PPO-clip actor-critic over keep ratios in ``[a_min, 1]`` (see the module docstring)."""

    def __init__(self, state_dim: int, *, seed: int = 0, hidden: int = 64, lr: float = 3e-3,
                 a_min: float = 0.05, sigma0: float = 0.5, sigma_min: float = 0.05, decay: float = 0.9,
                 clip: float = 0.2, update_epochs: int = 10):
        self.rng = np.random.default_rng(seed)
        self.actor = MLP(state_dim, 1, hidden, self.rng)
        self.critic = MLP(state_dim, 1, hidden, self.rng)
        self.lr, self.a_min = lr, a_min
        self.sigma0, self.sigma_min, self.decay = sigma0, sigma_min, decay
        self.clip, self.update_epochs, self.updates = clip, update_epochs, 0

    @property
    def sigma(self) -> float:
        """The current exploration noise (decays with every update)."""
        return max(self.sigma_min, self.sigma0 * self.decay ** self.updates)

    def mean(self, states: np.ndarray) -> tuple[np.ndarray, list, np.ndarray]:
        """Actor means in [a_min, 1] for a batch of states, its activations and sigmoid outputs."""
        out, acts = self.actor.forward(np.atleast_2d(states))
        sig = 1.0 / (1.0 + np.exp(-out[:, 0]))
        return self.a_min + (1.0 - self.a_min) * sig, acts, sig

    def act(self, state: np.ndarray, explore: bool = True, sigma: float | None = None,
            rng: np.random.Generator | None = None) -> tuple[float, float]:
        """(action in [a_min, 1], raw Gaussian sample) for one state; the mean when not exploring.

        Noise comes from ``rng`` when given (leaving the agent's own generator untouched)."""
        mu = float(self.mean(state)[0][0])
        noise = (rng or self.rng).normal(0.0, self.sigma if sigma is None else sigma) if explore else 0.0
        raw = mu + noise
        return float(np.clip(raw, self.a_min, 1.0)), raw

    def update(self, episodes: list[Episode]) -> None:
        """One PPO-clip update of actor and critic from a batch of finished episodes."""
        states = np.concatenate([e.states for e in episodes])
        raw = np.concatenate([e.raw for e in episodes])
        sigma = np.concatenate([np.full(len(e.raw), e.sigma) for e in episodes])
        ret = np.concatenate([np.full(len(e.raw), e.reward) for e in episodes])
        n = len(ret)
        mu_old = self.mean(states)[0]
        logp_old = -0.5 * ((raw - mu_old) / sigma) ** 2
        adv = ret - self.critic.forward(states)[0][:, 0]
        group = np.concatenate([np.full(len(e.raw), e.env) for e in episodes])
        for g in np.unique(group):          # centred per environment (one target's reward level
            adv[group == g] -= adv[group == g].mean()       # does not bias another's), one scale
        adv /= adv.std() + 1e-8
        for _ in range(self.update_epochs):
            mu, acts, sig = self.mean(states)
            ratio = np.exp(-0.5 * ((raw - mu) / sigma) ** 2 - logp_old)
            active = ~(((adv > 0) & (ratio > 1 + self.clip)) | ((adv < 0) & (ratio < 1 - self.clip)))
            dlogp = np.where(active, -adv * ratio / n, 0.0)               # d(-surrogate)/d(log p)
            dout = dlogp * (raw - mu) / sigma ** 2 * (1.0 - self.a_min) * sig * (1.0 - sig)
            self.actor.step(self.actor.backward(acts, dout[:, None]), self.lr)
            value, cacts = self.critic.forward(states)
            self.critic.step(self.critic.backward(cacts, 2.0 * (value - ret[:, None]) / n), self.lr)
        self.updates += 1


def rollout(agent: PolicyAgent, env, env_index: int = 0, explore: bool = True,
            sigma: float | None = None, rng: np.random.Generator | None = None) -> Episode:
    """Run one episode of ``agent`` in ``env`` (deterministic actor means when not exploring;
    exploration noise ``sigma``, default the agent's current one, drawn from ``rng`` if given)."""
    states, raws, taken = [], [], []
    for t in range(env.n_steps):
        s = env.observe(t, taken)
        a, raw = agent.act(s, explore, sigma, rng)
        states.append(s)
        raws.append(raw)
        taken.append(env.take(t, a, taken))
    return Episode(env_index, np.array(states), np.array(raws), taken,
                   agent.sigma if sigma is None else sigma, float(env.reward(taken)))


def learn(agent: PolicyAgent, envs: list, episodes: int, *, batch: int = 8,
          on_episode: Callable[[Episode, int], None] | None = None) -> list[Episode]:
    """Train ``agent`` for ``episodes`` episodes in total, round-robin over ``envs``.

    Every update uses ``batch`` episodes per environment (one batch holds every environment, so
    the shared actor sees all budgets at once). ``on_episode(episode, number)`` runs after each.
    Returns every episode, in order.
    """
    done: list[Episode] = []
    pending: list[Episode] = []
    while len(done) < episodes:
        for i, env in enumerate(envs):
            if len(done) >= episodes:
                break
            ep = rollout(agent, env, i)
            done.append(ep)
            pending.append(ep)
            if on_episode:
                on_episode(ep, len(done))
        if len(pending) >= batch * len(envs) or len(done) >= episodes:
            agent.update(pending)
            pending = []
    return done
