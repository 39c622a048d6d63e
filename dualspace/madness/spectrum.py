"""The spectrum of the denoiser's input Jacobian J = d eps_theta(x_t, t, e) / d x_t across generations.

For each probe x_t (a real image noised at step t, the same noise for every generation) we take J (D, D),
the eigenvalues lambda of J^T J (the squared singular values of J) and four summaries: the top eigenvalue,
the trace ||J||_F^2, the spectral entropy H and the effective rank exp(H) (Roy & Vetterli 2007). A
self-consuming loop that collapses onto its own samples should show it here: the denoiser contracts onto
fewer directions (effective rank falls) before its samples look worse.

- `jacobians`: J per probe by torch.func (jacrev, vmapped over probes); `jacobians_loop` is the slow
  reference (one autograd.grad per output dimension).
- `lanczos_spectrum`: the top-k eigenvalues (Lanczos, scipy eigsh on J^T J v = vjp(jvp(v))) and a Hutchinson
  trace, for D too large for the full matrix.
- `denoiser_spectrum`: both, on a `DiffusionGenerator` at a few timesteps.
- `bootstrap_mean`, `first_departure`: the mean over probes with its sd, and the first generation whose
  mean leaves generation 0's band.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator, eigsh
from torch.func import jacrev, jvp, vjp, vmap
from torch.nn.attention import SDPBackend, sdpa_kernel

from ..diffusion.model import DiffusionGenerator

ProbeFn = Callable[..., torch.Tensor]  # f(x_i (S), *args_i) -> (S): one probe in, one probe out


def _func_mode():
    """No autograd graph on the outputs, and the math attention kernel: PyTorch's fused CPU kernel
    (_scaled_dot_product_flash_attention_for_cpu) has no vmap batching rule (vmap then loops over the
    batch, exact but slow) and no forward-mode derivative (jvp fails); the math kernel is plain
    matmul + softmax, which both support."""
    stack = contextlib.ExitStack()
    stack.enter_context(torch.no_grad())
    stack.enter_context(sdpa_kernel(SDPBackend.MATH))
    return stack


def _flat(f: ProbeFn, shape: torch.Size) -> ProbeFn:
    """f with its output checked against the probe's shape S and flattened to (D,)."""
    def f_flat(x_i, *args_i):
        y = f(x_i, *args_i)
        if y.shape != shape:
            raise ValueError(f"the probe function must map a probe of shape {tuple(shape)} to the same shape, "
                             f"got {tuple(y.shape)}; J is square only for a denoiser-like map")
        return y.reshape(-1)
    return f_flat


def jacobians(f: ProbeFn, x: torch.Tensor, *args: torch.Tensor, chunk_size: int | None = None) -> torch.Tensor:
    """J[p] = d f(x_p, *args_p) / d x_p, flattened: x (P, *S), args (P, ...) each -> J (P, D, D), D = prod(S).

    chunk_size bounds memory: at most that many rows of J (backward passes) run as one batch, probe by probe;
    None runs all P * D rows at once.
    """
    f_flat = _flat(f, x.shape[1:])
    jac = jacrev(f_flat, chunk_size=chunk_size)  # one probe -> (D, *S)
    jac_flat = lambda x_i, *a: jac(x_i, *a).reshape(x_i.numel(), x_i.numel())  # noqa: E731  (D, D)
    with _func_mode():
        return vmap(jac_flat, chunk_size=1 if chunk_size else None)(x.detach(), *args)


def jacobians_loop(f: ProbeFn, x: torch.Tensor, *args: torch.Tensor) -> torch.Tensor:
    """The reference for `jacobians`: per probe, one torch.autograd.grad per output dimension -> (P, D, D)."""
    f_flat = _flat(f, x.shape[1:])
    out = []
    with torch.enable_grad():
        for p in range(len(x)):
            x_p = x[p].detach().clone().requires_grad_(True)
            y = f_flat(x_p, *(a[p] for a in args))  # (D,)
            rows = [torch.autograd.grad(y[i], x_p, retain_graph=True)[0].reshape(-1) for i in range(len(y))]
            out.append(torch.stack(rows))
    return torch.stack(out)


def denoiser_fn(model: DiffusionGenerator) -> ProbeFn:
    """f(x_t (S), t (), e (d_c)) -> eps_theta(x_t, t, e) (S): the conditional eps of one probe, no guidance."""
    if model.training:
        raise ValueError("denoiser_fn needs the model in eval mode (dropout would make J random): call model.eval()")
    dtype = next(model.parameters()).dtype
    if dtype != torch.float32:
        raise ValueError(f"denoiser_fn needs a float32 model, got {dtype}: call model.float()")
    return lambda x, t, e: model.eps(x[None], t[None], e[None])[0]


def noised_probes(model: DiffusionGenerator, x0: np.ndarray | torch.Tensor, labels: np.ndarray,
                  timesteps: Sequence[int], seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Probes x_t = q_sample(x0, t, noise) for clean images x0 (P, *S) in data space at each of `timesteps` (n_t,)
    -> x_t (n_t, P, *S), t (n_t, P) long, e = g(labels) (n_t, P, d_c). One noise draw (P, *S) from `seed` serves
    every timestep, so a probe depends only on (x0, seed, t): every generation's model is probed at the same
    x_t (e is each model's own embedding), whichever other timesteps are asked for."""
    x0 = torch.as_tensor(np.asarray(x0), dtype=torch.float32, device=model.device)
    labels = np.asarray(labels)
    if tuple(x0.shape[1:]) != model.shape or len(x0) != len(labels):
        raise ValueError(f"noised_probes: x0 {tuple(x0.shape)} and labels {labels.shape} must be (P, *{model.shape}) "
                         f"and (P,)")
    bad = [int(s) for s in timesteps if not 0 <= int(s) < model.schedule.T]
    if bad:
        raise ValueError(f"noised_probes: timesteps {bad} outside [0, T={model.schedule.T})")
    n_t, P = len(timesteps), len(x0)
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    noise = torch.randn(x0.shape, generator=gen).to(model.device)  # (P, *S)
    with torch.no_grad():
        x0 = model.to_model(x0, torch.as_tensor(labels, dtype=torch.long, device=model.device))
        t = torch.as_tensor([int(s) for s in timesteps], device=model.device)[:, None].expand(n_t, P)  # (n_t, P)
        x_t = torch.stack([model.schedule.q_sample(x0, t[i], noise) for i in range(n_t)])
        e = model.cond(model.onehot(labels))[None].expand(n_t, -1, -1)  # (n_t, P, d_c)
    return x_t, t.contiguous(), e.contiguous()


def eigenvalues(J: torch.Tensor) -> torch.Tensor:
    """Eigenvalues of J^T J, i.e. squared singular values of J (P, D, D) -> (P, D) float64, descending."""
    return torch.linalg.svdvals(J.double()) ** 2


def summaries(lam: np.ndarray | torch.Tensor) -> dict[str, np.ndarray]:
    """top, trace, spectral entropy and effective rank of eigenvalues lam (P, K) (NaN = absent) -> each (P,).

    H = -sum_i p_i log p_i with p = lam / sum(lam) and 0 log 0 = 0; effective rank = exp(H) (Roy & Vetterli
    2007, "The effective rank: a measure of effective dimensionality", EUSIPCO): D for a flat spectrum, 1 for
    a single direction. Both are NaN where the spectrum is all zero (J = 0: no directions to count).
    """
    lam = np.atleast_2d(np.asarray(lam, np.float64))  # (P, K)
    lam = np.where(np.isnan(lam), 0.0, np.clip(lam, 0.0, None))  # Lanczos may return -1e-12 for a zero
    trace = lam.sum(1)  # (P,)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = lam / trace[:, None]  # (P, K)
        entropy = -np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0).sum(1)
    entropy = np.where(trace > 0, entropy, np.nan)
    return {"top": lam.max(1), "trace": trace, "entropy": entropy, "effective_rank": np.exp(entropy)}


def lanczos_spectrum(f: ProbeFn, x: torch.Tensor, *args: torch.Tensor, k: int = 32, n_hutchinson: int = 64,
                     seed: int = 0, chunk_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-k eigenvalues of J^T J per probe -> (P, k) descending (NaN beyond D - 1: eigsh needs k < D), and the
    Hutchinson estimate of tr(J^T J) = E_v ||J v||^2 over `n_hutchinson` Rademacher v (Hutchinson 1989) -> (P,).

    J is never formed: eigsh (implicitly restarted Lanczos) sees v -> J^T (J v), one jvp and one vjp.
    """
    P, shape = len(x), x.shape[1:]
    D = math.prod(shape)
    k_eff = min(k, D - 1)
    rng = np.random.default_rng(seed)
    top = np.full((P, k), np.nan)
    trace = np.empty(P)
    with _func_mode():
        for p in range(P):
            f_p = lambda x_i, _p=p: f(x_i, *(a[_p] for a in args))  # noqa: E731
            x_p = x[p].detach()
            _, pullback = vjp(f_p, x_p)

            def JtJ(v: np.ndarray) -> np.ndarray:
                v = torch.as_tensor(np.asarray(v).reshape(shape), dtype=x.dtype, device=x.device)
                Jv = jvp(f_p, (x_p,), (v,))[1]
                return pullback(Jv)[0].reshape(-1).double().cpu().numpy()

            op = LinearOperator((D, D), matvec=JtJ, dtype=np.float64)
            vals = eigsh(op, k=k_eff, which="LA", v0=rng.standard_normal(D), return_eigenvectors=False)
            top[p, :k_eff] = np.sort(vals)[::-1]
            signs = rng.integers(0, 2, (n_hutchinson, *shape)) * 2.0 - 1.0  # (n_h, *S) Rademacher
            V = torch.as_tensor(signs, dtype=x.dtype, device=x.device)
            JV = vmap(lambda v: jvp(f_p, (x_p,), (v,))[1], chunk_size=chunk_size)(V)  # (n_h, *S)
            trace[p] = float(JV.double().pow(2).flatten(1).sum(1).mean())
    return top, trace


def denoiser_spectrum(model: DiffusionGenerator, x0: np.ndarray, labels: np.ndarray, timesteps: Sequence[int],
                      seed: int, chunk_size: int | None = None, method: str = "full", k: int = 32,
                      n_hutchinson: int = 64) -> dict[str, np.ndarray]:
    """Spectrum of J^T J, J = d eps_theta(x_t, t, e) / d x_t, at probes `noised_probes(model, x0, labels,
    timesteps, seed)` -> {"timesteps": (n_t,), "eigenvalues": (n_t, P, D or k), "top" / "trace" / "entropy" /
    "effective_rank": (n_t, P)}.

    method "full" forms J and is exact. method "lanczos" is for D too large for that: the top-k eigenvalues by
    Lanczos (NaN-padded to k), the trace by a Hutchinson estimate over `n_hutchinson` Rademacher probes
    (seeded by `seed`), and entropy / effective rank computed on the top-k only, an approximation that
    ignores the tail (it understates the effective rank when the tail carries weight).
    """
    if method not in ("full", "lanczos"):
        raise ValueError(f"denoiser_spectrum: method must be 'full' or 'lanczos', got '{method}'")
    f = denoiser_fn(model)
    x_t, t, e = noised_probes(model, x0, labels, timesteps, seed)
    lams, rows = [], []
    for i in range(len(timesteps)):
        if method == "full":
            lam = eigenvalues(jacobians(f, x_t[i], t[i], e[i], chunk_size=chunk_size)).cpu().numpy()  # (P, D)
            row = summaries(lam)
        else:
            lam, trace = lanczos_spectrum(f, x_t[i], t[i], e[i], k=k, n_hutchinson=n_hutchinson,
                                          seed=seed + i, chunk_size=chunk_size)  # (P, k), (P,)
            row = {**summaries(lam), "trace": trace}
        lams.append(lam)
        rows.append(row)
    return {"timesteps": np.asarray(timesteps, np.int64), "eigenvalues": np.stack(lams),
            **{key: np.stack([r[key] for r in rows]) for key in rows[0]}}


def bootstrap_mean(values: np.ndarray, n_boot: int = 1000, seed: int = 0) -> tuple[float, float]:
    """The mean of values (P,) over probes, and the sd of its bootstrap distribution (probes resampled with
    replacement, `n_boot` times)."""
    values = np.asarray(values, np.float64)
    if values.ndim != 1 or len(values) < 2 or n_boot < 2:
        raise ValueError(f"bootstrap_mean needs values of shape (P,) with P >= 2 and n_boot >= 2, got shape "
                         f"{values.shape} and n_boot={n_boot}")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (n_boot, len(values)))].mean(1)  # (n_boot,)
    return float(values.mean()), float(means.std(ddof=1))


def first_departure(values: Sequence[float], ref_mean: float, ref_sd: float, k_sigma: float = 3.0,
                    start: int = 1) -> int | None:
    """The first generation g >= start with |values[g] - ref_mean| > k_sigma * ref_sd, or None if none.
    With ref_sd = 0 any change counts."""
    for g in range(start, len(values)):
        if abs(values[g] - ref_mean) > k_sigma * ref_sd:
            return g
    return None
