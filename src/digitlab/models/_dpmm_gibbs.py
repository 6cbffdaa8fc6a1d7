"""Numba kernels: collapsed Gibbs sampling for a Dirichlet-process mixture of Beta-Bernoulli pixels.

The model, for binary images ``x_i`` in ``{0, 1}^D``::

    z | alpha        ~ CRP(alpha)
    theta_kd         ~ Beta(a_d, b_d)            (integrated out)
    x_id | z_i = k   ~ Bernoulli(theta_kd)

One chain is a :class:`GibbsChain`. Its state is kept so that the log
posterior-predictive of a point under every cluster costs one gather over the
point's *on* pixels per cluster (the sparse counterpart of a matrix product
against cached log-probabilities):

``log p(x | cluster k) = S0[k] - T(n_k) + sum_{d: x_d = 1} W[k, d]`` with

* ``W[k, d] = log(n1_kd + a_d) - log(n0_kd + b_d)``,
* ``S0[k] = sum_d log(n0_kd + b_d)``,
* ``T(n) = sum_d log(n + a_d + b_d)`` (memoised per value of ``n``).

``Wm``/``S0m`` hold the same quantities with one member removed, so a point
is scored against its own cluster without touching the cache; only when a
point actually moves are the two rows it touches recomputed (O(D) each).
All kernels release the GIL (``nogil``), so chains run in parallel threads.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["GibbsChain", "log_marginal_pixels"]

#: Every kernel: compiled once and cached on disk, and releasing the GIL.
_jit = njit(cache=True, nogil=True)
#: Bounds of the log-uniform hyperprior on every a_d and b_d.
HYPER_LO, HYPER_HI = 1e-2, 1e2


@_jit
def _den(T: np.ndarray, n: int, c: np.ndarray) -> float:
    """``sum_d log(n + c_d)``, memoised in ``T[n]`` (NaN = not computed yet)."""
    v: float = T[n]
    if math.isnan(v):
        v = 0.0
        for d in range(c.shape[0]):
            v += math.log(n + c[d])
        T[n] = v
    return v


# Rows of the float cache F, shape (6, D, capacity), for pixel d and cluster slot k (clusters contiguous,
# so adding a pixel's row over all clusters is one vectorised loop):
_L1, _L0, _L1M, _L0M, _W, _WM = 0, 1, 2, 3, 4, 5
# log(n1 + a), log(n0 + b), the same with one member fewer (0 when that count is 0),
# W = L1 - L0 and Wm = L1m - L0m.


@_jit
def _refresh(k, n1, nk, a, b, F, S0, S0m):  # type: ignore[no-untyped-def]
    """Recompute the cached row of cluster ``k`` from its counts (4 logs per pixel)."""
    m = nk[k]
    s0 = 0.0
    s0m = 0.0
    for d in range(a.shape[0]):
        c1 = n1[k, d]
        c0 = m - c1
        l1 = math.log(c1 + a[d])
        l0 = math.log(c0 + b[d])
        l1m = math.log(c1 - 1.0 + a[d]) if c1 >= 1 else 0.0
        l0m = math.log(c0 - 1.0 + b[d]) if c0 >= 1 else 0.0
        F[_L1, d, k] = l1
        F[_L0, d, k] = l0
        F[_L1M, d, k] = l1m
        F[_L0M, d, k] = l0m
        F[_W, d, k] = l1 - l0
        F[_WM, d, k] = l1m - l0m
        s0 += l0
        s0m += l0m
    S0[k] = s0
    S0m[k] = s0m


@_jit
def _shift(k, xi, n1, nk, a, b, F, S0, S0m, add):  # type: ignore[no-untyped-def]
    """Add (``add``) or remove the point with dense 0/1 row ``xi`` to/from cluster ``k``.

    One log per pixel: adding moves ``log(c + a)`` into the "one member fewer"
    slot and computes only ``log(c + 1 + a)``; removing is the mirror image.
    """
    if add:
        nk[k] += 1
    else:
        nk[k] -= 1
    m = nk[k]
    s0 = 0.0
    s0m = 0.0
    for d in range(a.shape[0]):
        if xi[d]:
            if add:
                n1[k, d] += 1
                F[_L1M, d, k] = F[_L1, d, k]
                F[_L1, d, k] = math.log(n1[k, d] + a[d])
            else:
                n1[k, d] -= 1
                F[_L1, d, k] = F[_L1M, d, k]
                c1 = n1[k, d]
                F[_L1M, d, k] = math.log(c1 - 1.0 + a[d]) if c1 >= 1 else 0.0
        else:
            c0 = m - n1[k, d]
            if add:
                F[_L0M, d, k] = F[_L0, d, k]
                F[_L0, d, k] = math.log(c0 + b[d])
            else:
                F[_L0, d, k] = F[_L0M, d, k]
                F[_L0M, d, k] = math.log(c0 - 1.0 + b[d]) if c0 >= 1 else 0.0
        F[_W, d, k] = F[_L1, d, k] - F[_L0, d, k]
        F[_WM, d, k] = F[_L1M, d, k] - F[_L0M, d, k]
        s0 += F[_L0, d, k]
        s0m += F[_L0M, d, k]
    S0[k] = s0
    S0m[k] = s0m


@_jit
def _grow(nk, n1, F, S0, S0m, ids, pos):  # type: ignore[no-untyped-def]
    """Double the cluster capacity; the new free slots are appended to ``ids``."""
    cap, D = n1.shape
    new = 2 * cap
    nk2 = np.zeros(new, nk.dtype)
    nk2[:cap] = nk
    n12 = np.zeros((new, D), n1.dtype)
    n12[:cap] = n1
    F2 = np.zeros((F.shape[0], D, new))
    F2[:, :, :cap] = F
    S02 = np.zeros(new)
    S02[:cap] = S0
    S0m2 = np.zeros(new)
    S0m2[:cap] = S0m
    ids2 = np.arange(new).astype(ids.dtype)
    ids2[:cap] = ids
    pos2 = np.arange(new).astype(pos.dtype)
    pos2[:cap] = pos
    return nk2, n12, F2, S02, S0m2, ids2, pos2


@_jit
def _sweep(rng, X, indptr, indices, order, z, nk, n1, F, S0, S0m, ids, pos, K,  # type: ignore[no-untyped-def]
           alpha, a, b, T):
    """One collapsed Gibbs sweep over the points in ``order``; points with ``z < 0`` are seated.

    Returns the (possibly regrown) arrays, the new number of clusters and the
    number of points that changed cluster.
    """
    c = a + b
    la = np.log(a)
    lb = np.log(b)
    W0 = la - lb
    S00 = lb.sum()
    T0 = _den(T, 0, c)
    log_alpha = math.log(alpha)
    lp = np.zeros(n1.shape[0] + 1)
    acc = np.zeros(n1.shape[0])
    hi = 0  # slots >= hi have never been used in this sweep's state
    for j in range(K):
        if ids[j] + 1 > hi:
            hi = ids[j] + 1
    moves = 0
    for t in range(order.shape[0]):
        i = order[t]
        st = indptr[i]
        en = indptr[i + 1]
        xi = X[i]
        own = z[i]
        if own >= 0 and nk[own] == 1:  # a singleton: drop its cluster and reseat the point
            nk[own] = 0
            for p in range(st, en):
                n1[own, indices[p]] -= 1
            j = pos[own]
            last = ids[K - 1]
            ids[j] = last
            pos[last] = j
            ids[K - 1] = own
            pos[own] = K - 1
            K -= 1
            z[i] = -1
            own = -2 - own  # not a member any more (distinct from -1 = never seated)
        # acc[k] = sum over the point's on pixels of W[d, k], for every slot below the high-water mark
        for k in range(hi):
            acc[k] = 0.0
        for p in range(st, en):
            row = F[_W, indices[p]]
            for k in range(hi):
                acc[k] += row[k]
        for j in range(K):
            k = ids[j]
            if k == own:
                s = S0m[k] - _den(T, nk[k] - 1, c)
                for p in range(st, en):
                    s += F[_WM, indices[p], k]
                lp[j] = math.log(nk[k] - 1.0) + s
            else:
                lp[j] = math.log(nk[k]) + acc[k] + S0[k] - _den(T, nk[k], c)
        s = S00 - T0
        for p in range(st, en):
            s += W0[indices[p]]
        lp[K] = log_alpha + s
        mx = lp[0]
        for j in range(1, K + 1):
            if lp[j] > mx:
                mx = lp[j]
        tot = 0.0
        for j in range(K + 1):
            lp[j] = math.exp(lp[j] - mx)
            tot += lp[j]
        u = rng.random() * tot
        choice = K
        cum = 0.0
        for j in range(K + 1):
            cum += lp[j]
            if u < cum:
                choice = j
                break
        fresh = choice == K
        new = -1 if fresh else ids[choice]
        if own >= 0 and new == own:
            continue
        if own >= 0 or (own < -1 and not fresh):  # left its cluster (a reseated singleton: joined another)
            moves += 1
        if own >= 0:
            _shift(own, xi, n1, nk, a, b, F, S0, S0m, False)
        if fresh:
            if n1.shape[0] == K:
                nk, n1, F, S0, S0m, ids, pos = _grow(nk, n1, F, S0, S0m, ids, pos)
                lp = np.zeros(n1.shape[0] + 1)
                acc = np.zeros(n1.shape[0])
            new = ids[K]
            K += 1
            if new + 1 > hi:
                hi = new + 1
            nk[new] = 0
            n1[new, :] = 0
            F[_L1, :, new] = la
            F[_L0, :, new] = lb
            F[_L1M, :, new] = 0.0
            F[_L0M, :, new] = 0.0
        _shift(new, xi, n1, nk, a, b, F, S0, S0m, True)
        z[i] = new
    return nk, n1, F, S0, S0m, ids, pos, K, moves


@_jit
def _pixel_loglik(la, lb, c1s, ms, K):  # type: ignore[no-untyped-def]
    """Log marginal likelihood of one pixel over all clusters at ``a = e^la``, ``b = e^lb``."""
    a = math.exp(la)
    b = math.exp(lb)
    s = K * (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b))
    for j in range(K):
        s += math.lgamma(a + c1s[j]) + math.lgamma(b + ms[j] - c1s[j]) - math.lgamma(a + b + ms[j])
    return s


@_jit
def _slice1(rng, u0, f0, other, first, c1s, ms, K, lo, hi):  # type: ignore[no-untyped-def]
    """One slice-sampling update (stepping out, shrinkage) of a log-hyperparameter on ``[lo, hi]``."""
    y = f0 + math.log(1.0 - rng.random())
    w = 1.0
    L = u0 - w * rng.random()
    R = L + w
    for _ in range(20):
        if lo >= L:
            break
        fl = _pixel_loglik(L, other, c1s, ms, K) if first else _pixel_loglik(other, L, c1s, ms, K)
        if fl <= y:
            break
        L -= w
    for _ in range(20):
        if hi <= R:
            break
        fr = _pixel_loglik(R, other, c1s, ms, K) if first else _pixel_loglik(other, R, c1s, ms, K)
        if fr <= y:
            break
        R += w
    L = max(L, lo)
    R = min(R, hi)
    for _ in range(200):
        u1 = L + rng.random() * (R - L)
        f1 = _pixel_loglik(u1, other, c1s, ms, K) if first else _pixel_loglik(other, u1, c1s, ms, K)
        if f1 > y:
            return u1, f1
        if u1 < u0:
            L = u1
        else:
            R = u1
    return u0, f0


@_jit
def _update_hypers(rng, n1, nk, ids, K, a, b):  # type: ignore[no-untyped-def]
    """Slice-sample every (log a_d, log b_d) in turn under a log-uniform prior on [1e-2, 1e2]."""
    lo = math.log(HYPER_LO)
    hi = math.log(HYPER_HI)
    c1s = np.empty(K)
    ms = np.empty(K)
    for j in range(K):
        ms[j] = nk[ids[j]]
    for d in range(a.shape[0]):
        for j in range(K):
            c1s[j] = n1[ids[j], d]
        la = math.log(a[d])
        lb = math.log(b[d])
        f = _pixel_loglik(la, lb, c1s, ms, K)
        la, f = _slice1(rng, la, f, lb, True, c1s, ms, K, lo, hi)
        lb, f = _slice1(rng, lb, f, la, False, c1s, ms, K, lo, hi)
        a[d] = math.exp(la)
        b[d] = math.exp(lb)


@_jit
def _update_alpha(rng, alpha, K, N, shape, rate):  # type: ignore[no-untyped-def]
    """Escobar & West (1995): resample the CRP concentration under a Gamma(shape, rate) prior."""
    eta = rng.beta(alpha + 1.0, float(N))
    r = rate - math.log(eta)
    odds = (shape + K - 1.0) / (N * r)
    if rng.random() < odds / (1.0 + odds):
        return rng.gamma(shape + K, 1.0 / r)
    return rng.gamma(shape + K - 1.0, 1.0 / r)


@_jit
def log_marginal_pixels(n1, nk, a, b):  # type: ignore[no-untyped-def]
    """``log p(X | z, a, b)``: sum over clusters and pixels of the Beta-Bernoulli marginal.

    Parameters
    ----------
    n1 : int array (K, D) -- ones per cluster and pixel
    nk : int array (K,) -- cluster sizes
    a, b : float arrays (D,)
    """
    s = 0.0
    for d in range(a.shape[0]):
        ad = a[d]
        bd = b[d]
        base = math.lgamma(ad + bd) - math.lgamma(ad) - math.lgamma(bd)
        for k in range(nk.shape[0]):
            m = nk[k]
            c1 = n1[k, d]
            s += base + math.lgamma(ad + c1) + math.lgamma(bd + m - c1) - math.lgamma(ad + bd + m)
    return s


class GibbsChain:
    """One Markov chain of the collapsed Gibbs sampler.

    Parameters
    ----------
    X : ndarray of uint8, shape (n, D)
        Binary data (0/1).
    rng : numpy.random.Generator
        The chain's own generator (used inside the compiled kernels).
    alpha : float
        Initial CRP concentration.
    a, b : ndarray of float, shape (D,)
        Initial Beta hyperparameters per pixel.
    alpha_prior : (shape, rate)
        Gamma prior of alpha for its resampling.

    Attributes
    ----------
    z : ndarray of int64, shape (n,)
        Cluster slot of every point (-1 before the first sweep).
    K : int
        Number of occupied clusters.
    """

    def __init__(self, X: np.ndarray, rng: np.random.Generator, alpha: float, a: np.ndarray, b: np.ndarray,
                 alpha_prior: tuple[float, float] = (1.0, 1.0), capacity: int = 64) -> None:
        X = np.ascontiguousarray(X, dtype=np.uint8)
        self.X = X
        self.N, self.D = X.shape
        self.indptr = np.zeros(self.N + 1, np.int64)
        self.indptr[1:] = np.cumsum(X.sum(axis=1, dtype=np.int64))
        self.indices = np.nonzero(X)[1].astype(np.int64)  # row-major: grouped by point
        self.rng = rng
        self.alpha = float(alpha)
        self.alpha_prior = (float(alpha_prior[0]), float(alpha_prior[1]))
        self.a = np.array(a, dtype=np.float64)
        self.b = np.array(b, dtype=np.float64)
        self.z = np.full(self.N, -1, np.int64)
        cap = max(int(capacity), 2)
        self.nk = np.zeros(cap, np.int64)
        self.n1 = np.zeros((cap, self.D), np.int64)
        self.F = np.zeros((6, self.D, cap))
        self.S0 = np.zeros(cap)
        self.S0m = np.zeros(cap)
        self.ids = np.arange(cap, dtype=np.int64)
        self.pos = np.arange(cap, dtype=np.int64)
        self.K = 0

    def _reset_cache(self) -> np.ndarray:
        """Recompute every occupied row (after the hyperparameters changed); fresh memo of T."""
        for k in self.ids[:self.K]:
            _refresh(int(k), self.n1, self.nk, self.a, self.b, self.F, self.S0, self.S0m)
        return np.full(self.N + 1, np.nan)

    def sweep(self) -> int:
        """One Gibbs sweep over all points in a random order; returns how many points moved."""
        T = self._reset_cache()
        order = self.rng.permutation(self.N)
        (self.nk, self.n1, self.F, self.S0, self.S0m, self.ids, self.pos, K, moves) = _sweep(
            self.rng, self.X, self.indptr, self.indices, order, self.z, self.nk, self.n1, self.F,
            self.S0, self.S0m, self.ids, self.pos, self.K, self.alpha, self.a, self.b, T)
        self.K = int(K)
        return int(moves)

    def update_alpha(self) -> None:
        """Escobar & West auxiliary-variable update of alpha."""
        self.alpha = float(_update_alpha(self.rng, self.alpha, self.K, self.N, *self.alpha_prior))

    def update_hypers(self) -> None:
        """Slice-sample the per-pixel Beta hyperparameters given the partition."""
        _update_hypers(self.rng, self.n1, self.nk, self.ids, self.K, self.a, self.b)

    def occupied(self) -> np.ndarray:
        """Slots of the occupied clusters, shape (K,)."""
        return self.ids[:self.K].copy()

    def joint_loglik(self) -> float:
        """``log p(z | alpha) + log p(X | z, a, b)``."""
        occ = self.occupied()
        nk = self.nk[occ]
        lz = (self.K * math.log(self.alpha) + math.lgamma(self.alpha) - math.lgamma(self.alpha + self.N)
              + float(sum(math.lgamma(float(n)) for n in nk)))
        return lz + float(log_marginal_pixels(self.n1[occ], nk, self.a, self.b))

    def compact(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Clusters relabelled 0..K-1 by decreasing size.

        Returns
        -------
        z : int32 (n,), nk : int64 (K,), n1 : int32 (K, D)
        """
        occ = self.occupied()
        occ = occ[np.argsort(-self.nk[occ], kind="stable")]
        relabel = np.full(self.nk.shape[0], -1, np.int64)
        relabel[occ] = np.arange(occ.shape[0])
        return (relabel[self.z].astype(np.int32), self.nk[occ].astype(np.int64),
                self.n1[occ].astype(np.int32))
