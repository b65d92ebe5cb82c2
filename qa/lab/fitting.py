"""Fitting the scoring model's weights and measuring them (used by `qa fit`, `qa eval` and
the tests; plain numpy: the models are small)."""

from __future__ import annotations

import numpy as np

from ..scoring import sigmoid


def fit_listwise(groups: list[tuple[np.ndarray, np.ndarray]], l2: float = 1e-3, steps: int = 400) -> np.ndarray:
    """Weights w maximising, per question, the softmax probability of its right candidates
    (rows X, labels y with at least one 1), by full-batch gradient ascent with Adam. Groups
    are padded into one array so that each step is a few matrix products."""
    width = max(len(y) for _, y in groups)
    X = np.zeros((len(groups), width, groups[0][0].shape[1]))
    Y = np.zeros((len(groups), width))
    real = np.zeros((len(groups), width), bool)
    for g, (x, y) in enumerate(groups):
        X[g, : len(y)], Y[g, : len(y)], real[g, : len(y)] = x, y, True
    w = np.zeros(X.shape[2])
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    for t in range(1, steps + 1):
        s = np.where(real, X @ w, -np.inf)
        p = np.exp(s - s.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        q = p * Y
        q /= np.maximum(q.sum(axis=1, keepdims=True), 1e-12)
        grad = np.einsum("gc,gcf->f", q - p, X) / len(groups) - l2 * w
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad ** 2
        w += 0.05 * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
    return w.astype(np.float32)


def fit_logistic(X: np.ndarray, y: np.ndarray, l2: float = 1e-2, steps: int = 50) -> np.ndarray:
    """L2-regularised logistic regression by Newton's method; returns weights then bias."""
    A = np.column_stack([X, np.ones(len(X))]).astype(np.float64)
    w = np.zeros(A.shape[1])
    reg = np.full(A.shape[1], l2 * len(X))
    reg[-1] = 0.0  # the bias is not shrunk
    for _ in range(steps):
        p = sigmoid(A @ w)
        grad = A.T @ (p - y) + reg * w
        hess = (A * (p * (1 - p))[:, None]).T @ A + np.diag(reg) + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w.astype(np.float32)


def reliability(confidence: np.ndarray, right: np.ndarray, bins: int = 10) -> tuple[float, list[dict]]:
    """Expected calibration error and the reliability table (equal-width bins of confidence)."""
    table, ece = [], 0.0
    edges = np.linspace(0, 1, bins + 1)
    for n in range(bins):
        inside = (confidence >= edges[n]) & ((confidence < edges[n + 1]) if n < bins - 1 else (confidence <= 1))
        if inside.any():
            mean_conf, share_right = float(confidence[inside].mean()), float(right[inside].mean())
            ece += inside.sum() / len(confidence) * abs(mean_conf - share_right)
            table.append({"bin": f"{edges[n]:.1f}-{edges[n + 1]:.1f}", "questions": int(inside.sum()),
                          "mean_confidence": round(mean_conf, 4), "right": round(share_right, 4)})
    return round(ece, 4), table


def auroc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """Area under the ROC curve: the chance a positive outranks a negative (ties count half)."""
    pos, neg = scores[positive], scores[~positive]
    if not len(pos) or not len(neg):
        return None
    order = np.argsort(np.concatenate([pos, neg]), kind="stable")
    ranks = np.empty(len(order))
    ranks[order] = np.arange(1, len(order) + 1)
    allv = np.concatenate([pos, neg])
    for value in np.unique(allv):  # average ranks of ties
        same = allv == value
        ranks[same] = ranks[same].mean()
    return round(float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))), 4)
