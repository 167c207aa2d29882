"""Schedulers of the fleet problem: an ant colony optimiser and the baselines it is measured against.

Every scheduler takes a Problem (and a seed where it is random) and returns an int array: the node
of each task, or UNASSIGNED when no node can take it. All respect every budget (load, flash, energy
budget, per-pair fit); they differ in what they optimise:

- round_robin: tasks in order, each to the next node (cyclically) that can take it.
- greedy: all (task, node) pairs by ascending energy; a pair is taken when its task is still free and
  the node can take it ("least energy first").
- min_min: the classic Min-Min of heterogeneous scheduling: repeatedly the task whose earliest
  completion (node load after adding it) is smallest goes to that node. Balances load, ignores energy.
- genetic: a generational GA over node-per-task chromosomes (tournament selection, uniform
  crossover, per-gene mutation, elitism); infeasible genes are repaired to the least-energy node.
- ant_colony: MAX-MIN ant system (see ant_colony's docstring).
- exact: the optimum of the energy objective by scipy.optimize.milp (small problems).

The objective of the metaheuristics is cost = total energy + BALANCE_WEIGHT x E_lb x makespan, where
E_lb is the sum over tasks of their least energy: energy first, load balance breaks near-ties (the
term is at most 1% of the energy lower bound, so it never buys balance with more than 1% energy).
"""

from __future__ import annotations

import numpy as np

from edgebuild.fleet.problem import UNASSIGNED, NodeState, Problem

BALANCE_WEIGHT = 0.01
_UNASSIGNED_PENALTY = 1e3   # x E_lb per unplaced task: any full placement beats a partial one


def cost(problem: Problem, assign: np.ndarray, allowed: np.ndarray | None = None) -> float:
    """The metaheuristics' objective of ``assign`` (lower is better); see the module docstring."""
    e_lb = _energy_lower_bound(problem, allowed)
    a = np.asarray(assign)
    placed = a != UNASSIGNED
    t, n = np.nonzero(placed)[0], a[placed]
    load = np.bincount(n, weights=problem.load[t, n], minlength=problem.n_nodes)
    return (float(problem.energy[t, n].sum()) + BALANCE_WEIGHT * e_lb * float(load.max(initial=0.0))
            + _UNASSIGNED_PENALTY * e_lb * int((~placed).sum()))


def _energy_lower_bound(problem: Problem, allowed: np.ndarray | None = None) -> float:
    allowed = problem.allowed() if allowed is None else allowed
    e = np.where(allowed, problem.energy, np.inf).min(axis=1)
    return float(np.where(np.isfinite(e), e, 0.0).sum()) or 1.0


# ------------------------------------------------------------------------------------- baselines

def round_robin(problem: Problem) -> np.ndarray:
    """Each task in order to the next node, cyclically, that can take it."""
    allowed, state = problem.allowed(), NodeState(problem)
    assign = np.full(problem.n_tasks, UNASSIGNED)
    nxt = 0
    for t in range(problem.n_tasks):
        ok = state.feasible_nodes(t, allowed)
        order = (nxt + np.arange(problem.n_nodes)) % problem.n_nodes
        hits = order[ok[order]]
        if hits.size:
            assign[t] = hits[0]
            state.add(t, hits[0])
            nxt = (hits[0] + 1) % problem.n_nodes
    return assign


def greedy(problem: Problem) -> np.ndarray:
    """Least energy first: pairs by ascending energy, taken while the task is free and the node fits."""
    allowed, state = problem.allowed(), NodeState(problem)
    assign = np.full(problem.n_tasks, UNASSIGNED)
    ts, ns = np.nonzero(allowed)
    for i in np.argsort(problem.energy[ts, ns], kind="stable"):
        t, n = ts[i], ns[i]
        if assign[t] == UNASSIGNED and state.feasible_nodes(t, allowed)[n]:
            assign[t] = n
            state.add(t, n)
    return assign


def min_min(problem: Problem) -> np.ndarray:
    """Min-Min: repeatedly place the task with the smallest earliest completion time on that node."""
    allowed, state = problem.allowed(), NodeState(problem)
    assign = np.full(problem.n_tasks, UNASSIGNED)
    free = np.ones(problem.n_tasks, bool)
    while free.any():
        idx = np.nonzero(free)[0]
        ok = np.array([state.feasible_nodes(t, allowed) for t in idx])
        completion = np.where(ok, state.load + problem.load[idx], np.inf)
        best_n = completion.argmin(axis=1)
        best_c = completion[np.arange(idx.size), best_n]
        if not np.isfinite(best_c).any():
            break
        i = int(best_c.argmin())
        t, n = idx[i], best_n[i]
        assign[t] = n
        state.add(t, n)
        free[t] = False
    return assign


def _repair_decode(problem: Problem, genes: np.ndarray, allowed: np.ndarray, order: np.ndarray) -> np.ndarray:
    """A feasible assignment from ``genes``: a gene that breaks a budget moves to the least-energy
    node that can still take its task (or is dropped when none can)."""
    state = NodeState(problem)
    out = np.full(problem.n_tasks, UNASSIGNED)
    for t in order:
        g = genes[t]
        if g != UNASSIGNED and _fits(problem, state, allowed, t, g):
            n = g
        else:
            ok = state.feasible_nodes(t, allowed)
            if not ok.any():
                continue
            n = int(np.where(ok, problem.energy[t], np.inf).argmin())
        out[t] = n
        state.add(t, n)
    return out


def _fits(p: Problem, s: NodeState, allowed: np.ndarray, t: int, n: int) -> bool:
    return bool(allowed[t, n] and s.load[n] + p.load[t, n] <= p.capacity[n] + 1e-12
                and s.flash[n] + p.flash[t, n] <= p.flash_limit[n]
                and s.energy[n] + p.energy[t, n] <= p.energy_budget[n] + 1e-9)


def genetic(problem: Problem, seed: int = 0, population: int = 30, generations: int = 40,
            mutation: float | None = None, elite: int = 2) -> np.ndarray:
    """Generational GA: tournament (size 3) selection, uniform crossover, per-gene mutation to a random
    allowed node (rate 1/tasks by default), ``elite`` best kept; children are repaired (see
    _repair_decode) in the order of decreasing task load, so large tasks keep their genes first."""
    rng = np.random.default_rng(seed)
    allowed = problem.allowed()
    T = problem.n_tasks
    mutation = 1.0 / max(T, 1) if mutation is None else mutation
    order = np.argsort(-problem.load.mean(axis=1), kind="stable")
    choices = [np.nonzero(allowed[t])[0] for t in range(T)]

    def random_genes():
        return np.array([rng.choice(c) if c.size else UNASSIGNED for c in choices])

    pop = [_repair_decode(problem, random_genes(), allowed, order) for _ in range(population - 1)]
    pop.append(greedy(problem))   # one informed individual, as is usual for seeded GAs
    fit = np.array([cost(problem, a, allowed) for a in pop])
    for _ in range(generations):
        ranked = np.argsort(fit, kind="stable")
        children = [pop[i] for i in ranked[:elite]]
        while len(children) < population:
            pa, pb = (pop[min(rng.integers(0, population, 3), key=lambda i: fit[i])] for _ in range(2))
            child = np.where(rng.random(T) < 0.5, pa, pb)
            for t in np.nonzero(rng.random(T) < mutation)[0]:
                if choices[t].size:
                    child[t] = rng.choice(choices[t])
            children.append(_repair_decode(problem, child, allowed, order))
        pop = children
        fit = np.array([cost(problem, a, allowed) for a in pop])
    return pop[int(np.argmin(fit))]


# ----------------------------------------------------------------------------------- ant colony

def ant_colony(problem: Problem, seed: int = 0, ants: int = 10, iterations: int = 25, alpha: float = 1.0,
               beta: float = 2.0, rho: float = 0.1, q0: float = 0.5, local_search: bool = True) -> np.ndarray:
    """MAX-MIN ant system (Stuetzle & Hoos 2000) with ACS-style exploitation and local search.

    Each ant places the tasks in order of decreasing regret (second-best minus best energy: tasks with
    most to lose go first) and picks for task t a node n among those that can still take it, with
    weight tau[t,n]^alpha x eta[t,n]^beta; with probability q0 it takes the best-weighted node
    (pseudo-random proportional rule of ACS), otherwise it samples.
    - heuristic eta[t,n] = (E_min(t) / E[t,n]) x (1 - load_n / capacity_n + eps): cheap pairs first,
      and among equal energy the node with more free time, which steers ants towards balanced loads;
    - pheromone: only the iteration best (every 5th iteration the global best: elitist update)
      deposits 1/cost after evaporation by rho; tau is clamped to [tau_min, tau_max] with MMAS bounds
      tau_max = 1/(rho x best cost), tau_min = tau_max/(2 x nodes): bounded trails keep exploring
      and avoid early stagnation; trails start at tau_max;
    - local search: the iteration best is improved by relocate, swap and ejection-chain descent
      (improve()), which fixes what the constructive rule gets wrong at tight capacities.
    Deterministic for a seed.
    """
    rng = np.random.default_rng(seed)
    allowed = problem.allowed()
    T, N = problem.n_tasks, problem.n_nodes
    e_masked = np.where(allowed, problem.energy, np.inf)
    e_min = e_masked.min(axis=1, keepdims=True)
    eta_energy = np.where(allowed, np.where(np.isfinite(e_min), e_min, 1.0) / np.maximum(problem.energy, 1e-300), 0.0)
    sorted_e = np.sort(e_masked, axis=1)
    regret = np.full(T, np.inf)   # tasks with a single (or no) allowed node go first
    if N > 1:
        two = np.isfinite(sorted_e[:, 1])
        regret[two] = sorted_e[two, 1] - sorted_e[two, 0]
    order = np.argsort(-regret, kind="stable")

    best, best_cost = None, np.inf
    tau_max = 1.0
    tau = np.full((T, N), tau_max)
    for it in range(iterations):
        it_best, it_cost = None, np.inf
        for _ in range(ants):
            a = _construct(problem, tau, eta_energy, allowed, order, rng, alpha, beta, q0)
            c = cost(problem, a, allowed)
            if c < it_cost:
                it_best, it_cost = a, c
        if local_search:
            it_best = improve(problem, it_best, allowed)
            it_cost = cost(problem, it_best, allowed)
        if it_cost < best_cost:
            best, best_cost = it_best.copy(), it_cost
        tau_max = 1.0 / (rho * best_cost)
        tau_min = tau_max / (2.0 * N)
        tau *= 1.0 - rho
        dep, dep_cost = (best, best_cost) if it % 5 == 4 else (it_best, it_cost)
        placed = dep != UNASSIGNED
        tau[np.nonzero(placed)[0], dep[placed]] += 1.0 / dep_cost
        np.clip(tau, tau_min, tau_max, out=tau)
    return best


def _construct(p: Problem, tau, eta_energy, allowed, order, rng, alpha, beta, q0) -> np.ndarray:
    state = NodeState(p)
    assign = np.full(p.n_tasks, UNASSIGNED)
    for t in order:
        ok = state.feasible_nodes(t, allowed)
        if not ok.any():
            continue
        free = np.clip(1.0 - state.load / p.capacity, 0.0, None) + 1e-3
        w = np.where(ok, tau[t] ** alpha * (eta_energy[t] * free) ** beta, 0.0)
        if rng.random() < q0 or w.sum() <= 0:
            n = int(np.argmax(np.where(ok, w, -1.0)))
        else:
            n = int(rng.choice(p.n_nodes, p=w / w.sum()))
        assign[t] = n
        state.add(t, n)
    return assign


def improve(problem: Problem, assign: np.ndarray, allowed: np.ndarray | None = None,
            max_passes: int = 20) -> np.ndarray:
    """Local search: relocate (one task to another node), swap (two tasks trade nodes) and ejection
    (a task takes another's place, which moves to a third node) moves that lower total energy and keep
    every budget, best move per task first, until none is left or max_passes."""
    p = problem
    allowed = p.allowed() if allowed is None else allowed
    a = np.asarray(assign).copy()
    state = NodeState(p)
    for t in np.nonzero(a != UNASSIGNED)[0]:
        state.add(t, a[t])
    T = np.arange(p.n_tasks)
    for _ in range(max_passes):
        moved = False
        for t in range(p.n_tasks):
            src = a[t]
            if src == UNASSIGNED:
                ok = state.feasible_nodes(t, allowed)
                if ok.any():
                    n = int(np.where(ok, p.energy[t], np.inf).argmin())
                    a[t] = n
                    state.add(t, n)
                    moved = True
                continue
            state.remove(t, src)
            ok = state.feasible_nodes(t, allowed)
            gain = np.where(ok, p.energy[t, src] - p.energy[t], -np.inf)
            n = int(gain.argmax())
            if gain[n] > 1e-12 * max(p.energy[t, src], 1e-300):
                a[t] = n
                moved = True
            state.add(t, a[t])
            if a[t] != src:
                continue
            # swap t (at src) with some u (at b != src)
            others = a != UNASSIGNED
            others &= a != src
            u = T[others]
            if u.size == 0:
                continue
            b = a[u]
            gain = p.energy[t, src] + p.energy[u, b] - p.energy[t, b] - p.energy[u, src]
            feas = (allowed[t, b] & allowed[u, src]
                    & (state.load[src] - p.load[t, src] + p.load[u, src] <= p.capacity[src] + 1e-12)
                    & (state.load[b] - p.load[u, b] + p.load[t, b] <= p.capacity[b] + 1e-12)
                    & (state.flash[src] - p.flash[t, src] + p.flash[u, src] <= p.flash_limit[src])
                    & (state.flash[b] - p.flash[u, b] + p.flash[t, b] <= p.flash_limit[b])
                    & (state.energy[src] - p.energy[t, src] + p.energy[u, src] <= p.energy_budget[src] + 1e-9)
                    & (state.energy[b] - p.energy[u, b] + p.energy[t, b] <= p.energy_budget[b] + 1e-9))
            gain = np.where(feas, gain, -np.inf)
            i = int(gain.argmax())
            if gain[i] > 1e-12 * max(p.energy[t, src], 1e-300):
                _apply(state, a, [(t, src, b[i]), (u[i], b[i], src)])
                moved = True
            elif _eject(p, state, a, allowed, t):
                moved = True
        if not moved:
            break
    return a


def _apply(state: NodeState, a: np.ndarray, moves) -> None:
    """Apply simultaneous moves [(task, from, to)] to the assignment and its running totals."""
    for t, src, _ in moves:
        state.remove(t, src)
    for t, _, dst in moves:
        a[t] = dst
        state.add(t, dst)


def _eject(p: Problem, state: NodeState, a: np.ndarray, allowed: np.ndarray, t: int) -> bool:
    """Ejection chain of length 2: t moves from its node to node n = a[u], u moves out of n to a third
    node m, when that lowers total energy and every budget holds. Applies the best such move."""
    src = a[t]
    state.remove(t, src)
    u = np.nonzero((a != UNASSIGNED) & (a != src))[0]
    n = a[u]
    fits_t = (allowed[t, n] & (state.load[n] - p.load[u, n] + p.load[t, n] <= p.capacity[n] + 1e-12)
              & (state.flash[n] - p.flash[u, n] + p.flash[t, n] <= p.flash_limit[n])
              & (state.energy[n] - p.energy[u, n] + p.energy[t, n] <= p.energy_budget[n] + 1e-9))
    u, n = u[fits_t], n[fits_t]
    state.add(t, src)
    if u.size == 0:
        return False
    # u's destination m: the state without t at src, m != n
    load, flash, energy = state.load.copy(), state.flash.copy(), state.energy.copy()
    load[src] -= p.load[t, src]
    flash[src] -= p.flash[t, src]
    energy[src] -= p.energy[t, src]
    fits_u = (allowed[u] & (load + p.load[u] <= p.capacity + 1e-12) & (flash + p.flash[u] <= p.flash_limit)
              & (energy + p.energy[u] <= p.energy_budget + 1e-9))
    fits_u[np.arange(u.size), n] = False
    gain = np.where(fits_u, (p.energy[t, src] - p.energy[t, n] + p.energy[u, n])[:, None] - p.energy[u], -np.inf)
    i, m = np.unravel_index(int(gain.argmax()), gain.shape)
    if not gain[i, m] > 1e-12 * max(p.energy[t, src], 1e-300):
        return False
    _apply(state, a, [(t, src, n[i]), (u[i], n[i], m)])
    return True


# ----------------------------------------------------------------------------------------- exact

def exact(problem: Problem, time_limit: float = 30.0) -> tuple[np.ndarray | None, float | None]:
    """The least-total-energy assignment by scipy.optimize.milp (binary x[t,n]; each task on one
    allowed node; per node load <= capacity, flash sum <= limit, energy <= budget).

    Returns (assignment, lower bound on the optimum); assignment is None when the solver found no
    feasible point within ``time_limit``. The bound equals the energy of the assignment when proven
    optimal."""
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import csr_matrix, kron, eye

    p = problem
    T, N = p.n_tasks, p.n_nodes
    allowed = p.allowed().ravel()
    c = np.where(allowed, p.energy.ravel(), 0.0)
    one_per_task = kron(eye(T), np.ones((1, N)), format="csr")
    per_node = kron(np.ones((1, T)), eye(N), format="csr")

    def node_rows(m):
        return csr_matrix(per_node.multiply(np.where(allowed, m.ravel(), 0.0)[None, :]))

    cons = [LinearConstraint(one_per_task, 1, 1),
            LinearConstraint(node_rows(p.load), -np.inf, p.capacity),
            LinearConstraint(node_rows(p.flash), -np.inf, p.flash_limit)]
    if np.isfinite(p.energy_budget).any():
        cons.append(LinearConstraint(node_rows(p.energy), -np.inf, np.where(np.isfinite(p.energy_budget),
                                                                           p.energy_budget, 1e300)))
    res = milp(c, constraints=cons, integrality=np.ones(T * N), bounds=Bounds(0, allowed.astype(float)),
               options={"time_limit": time_limit})
    bound = getattr(res, "mip_dual_bound", None)
    if res.x is None:
        return None, bound
    x = res.x.reshape(T, N)
    return x.argmax(axis=1).astype(int), (float(bound) if bound is not None else float(res.fun))


SCHEDULERS = {"round_robin": round_robin, "greedy": greedy, "min_min": min_min,
              "genetic": genetic, "ant_colony": ant_colony}
