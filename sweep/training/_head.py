"""A small classifier head trained in numpy, for feature-extraction trials.

A feature-extraction trial fits Dense(units, relu) + Dropout + Dense(outputs, sigmoid) on a few
hundred to a few thousand banked feature vectors. Keras' per-model ``compile``/``fit`` set-up
costs about a second on two CPU cores, more than the fit itself, and a 200-trial sweep pays it
200 times. The same head in numpy (the optimizers follow Keras' update rules and defaults) fits
in tens of milliseconds. ``TrialResult.export`` rebuilds the trained head as an equivalent Keras
model on the truncated backbone (:func:`sweep.training._keras_models.feature_extraction_model`),
so what users keep is a normal ``.keras`` file.
"""

from __future__ import annotations

import numpy as np

from sweep.training._config import TrainingDiverged

# Keras 3's defaults for keras.optimizers.Adam, AdamW and RMSprop, which fine-tuning trials use
# as they come (make_optimizer passes only the learning rate): the head trains as they would.
BETA_1 = 0.9  # Adam, AdamW: decay of the gradient's moving average
BETA_2 = 0.999  # Adam, AdamW: decay of the squared gradient's moving average
EPSILON = 1e-7  # Adam, AdamW, RMSprop
ADAMW_WEIGHT_DECAY = 0.004  # AdamW
RMSPROP_RHO = 0.9  # RMSprop: decay of the squared gradient's moving average
# Not a Keras default (keras.optimizers.SGD has momentum 0.0): the sweep's SGD uses momentum 0.9,
# and make_optimizer passes this same constant to Keras.
SGD_MOMENTUM = 0.9


class _Optimizer:
    """Keras' adam, adamw, sgd (momentum 0.9) and rmsprop updates, on a list of numpy arrays.

    Every operation writes into the moments, the parameter or one scratch array per parameter:
    with batches of 16-64 rows, the update of a 1,024 x 512 kernel costs more than the batch's
    matrix products, and a temporary array per operation made it most of a trial's time.
    """

    def __init__(self, name: str, learning_rate: float, params: list[np.ndarray]) -> None:
        self.name, self.lr, self.t = name, learning_rate, 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.scratch = [np.empty_like(p) for p in params]

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        self.t += 1
        lr = self.lr
        for p, g, m, v, tmp in zip(params, grads, self.m, self.v, self.scratch):
            if self.name == "sgd":  # m = 0.9 m - lr g; p += m
                m *= SGD_MOMENTUM
                np.multiply(g, lr, out=tmp)
                m -= tmp
                p += m
            elif self.name == "rmsprop":  # v = rho v + (1 - rho) g^2; p -= lr g / sqrt(v + eps)
                v *= RMSPROP_RHO
                np.multiply(g, g, out=tmp)
                tmp *= 1 - RMSPROP_RHO
                v += tmp
                np.add(v, EPSILON, out=tmp)
                np.sqrt(tmp, out=tmp)
                np.divide(g, tmp, out=tmp)
                tmp *= lr
                p -= tmp
            else:  # adam, adamw: m += (1 - b1)(g - m); v += (1 - b2)(g^2 - v); p -= alpha m / (sqrt(v) + eps)
                if self.name == "adamw":
                    p *= 1 - lr * ADAMW_WEIGHT_DECAY
                np.subtract(g, m, out=tmp)
                tmp *= 1 - BETA_1
                m += tmp
                np.multiply(g, g, out=tmp)
                tmp -= v
                tmp *= 1 - BETA_2
                v += tmp
                alpha = lr * np.sqrt(1 - BETA_2**self.t) / (1 - BETA_1**self.t)
                np.sqrt(v, out=tmp)
                tmp += EPSILON
                np.divide(m, tmp, out=tmp)
                tmp *= alpha
                p -= tmp


class NumpyHead:
    """Standardise, [Dense(units, relu), Dropout], Dense(outputs, sigmoid); weighted cross-entropy.

    Cells whose target is NaN (unknown) have weight 0: they add nothing to the loss or gradient.
    """

    def __init__(
        self, n_inputs: int, n_outputs: int, units: int, dropout: float, optimizer: str, learning_rate: float, seed: int
    ) -> None:
        self.rng = np.random.default_rng(seed)
        self.units, self.dropout = units, dropout
        self.mean = np.zeros(n_inputs, np.float32)
        self.std = np.ones(n_inputs, np.float32)
        if units:
            self.params = [
                self._glorot(n_inputs, units),
                np.zeros(units, np.float32),
                self._glorot(units, n_outputs),
                np.zeros(n_outputs, np.float32),
            ]
        else:
            self.params = [self._glorot(n_inputs, n_outputs), np.zeros(n_outputs, np.float32)]
        self.optimizer = _Optimizer(optimizer, learning_rate, self.params)
        self._stream: np.ndarray | None = None  # the shuffle that capped epochs read on from (fit_epoch's rows)
        self._cursor = 0

    def _glorot(self, fan_in: int, fan_out: int) -> np.ndarray:
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return self.rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32)

    def set_standardization(self, features: np.ndarray, block: int = 16384) -> None:
        """Each input's mean and standard deviation over the training rows, summed block by block in
        float64: ``features.std`` made a temporary as large as the training matrix (another 0.96 GB
        at full ChestX-ray14 size with the banked views)."""
        total, squares = np.zeros(features.shape[1]), np.zeros(features.shape[1])
        for lo in range(0, len(features), block):
            rows = np.asarray(features[lo : lo + block], np.float64)
            total += rows.sum(axis=0)
            squares += np.square(rows).sum(axis=0)
        mean = total / max(1, len(features))
        self.mean = mean.astype(np.float32)
        self.std = (np.sqrt(np.maximum(squares / max(1, len(features)) - mean**2, 0)) + 1e-6).astype(np.float32)

    def _forward(self, x: np.ndarray, train: bool) -> tuple[np.ndarray, list[np.ndarray]]:
        x = (x - self.mean) / self.std
        if not self.units:
            return x @ self.params[0] + self.params[1], [x]
        hidden = np.maximum(x @ self.params[0] + self.params[1], 0)
        mask = None
        if train and self.dropout:
            # float32 throughout: a float64 mask made the hidden layer, the logits and every
            # gradient float64, and the step's matrix products about twice as slow.
            mask = (self.rng.random(hidden.shape, dtype=np.float32) >= self.dropout).astype(np.float32)
            mask /= np.float32(1 - self.dropout)
            hidden = hidden * mask
        return hidden @ self.params[2] + self.params[3], [x, hidden, mask]

    def predict(self, features: np.ndarray) -> np.ndarray:
        logits, _ = self._forward(np.asarray(features, np.float32), train=False)
        return 1 / (1 + np.exp(-np.clip(logits, -60, 60)))

    def fit_epoch(
        self, features: np.ndarray, targets: np.ndarray, pos_weight: np.ndarray, batch_size: int, rows: int = 0
    ) -> float:
        """One epoch of shuffled mini-batches; returns the mean loss.

        ``rows``: an epoch trains on at most this many rows (0: all of them, one pass). Longer
        training sets are read as one stream of shuffles, each epoch taking the next ``rows``
        rows, so every row is still seen equally often (:meth:`_epoch_order`).
        """
        order = self._epoch_order(len(features), rows)
        total = 0.0
        for lo in range(0, len(order), batch_size):
            rows = order[lo : lo + batch_size]
            x, y = np.asarray(features[rows], np.float32), targets[rows]
            logits, cache = self._forward(x, train=True)
            p = 1 / (1 + np.exp(-np.clip(logits, -60, 60)))
            known = ~np.isnan(y)  # an unknown label (U-Ignore) adds nothing to the loss
            y = np.where(known, y, 0.0)
            weight = np.where(known, np.where(y > 0, pos_weight, 1.0), 0.0)
            eps = 1e-7
            loss = -np.mean(weight * (y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps)))
            if not np.isfinite(loss):
                raise TrainingDiverged(f"loss is {loss}")
            total += float(loss) * len(rows)
            grad_logits = weight * (p - y) / y.size
            grads = self._backward(cache, grad_logits)
            self.optimizer.step(self.params, grads)
        if not all(np.isfinite(p).all() for p in self.params):
            raise TrainingDiverged("weights became NaN or infinite")
        return total / len(order)

    def _epoch_order(self, n: int, rows: int) -> np.ndarray:
        """The rows of one epoch: a fresh shuffle of all ``n``, or the next ``rows`` of a shuffle stream."""
        if not rows or rows >= n:
            return self.rng.permutation(n)
        parts = []
        while rows:
            if self._stream is None or self._cursor == n:
                self._stream, self._cursor = self.rng.permutation(n), 0
            take = min(rows, n - self._cursor)
            parts.append(self._stream[self._cursor : self._cursor + take])
            self._cursor, rows = self._cursor + take, rows - take
        return np.concatenate(parts)

    def _backward(self, cache: list, grad_logits: np.ndarray) -> list[np.ndarray]:
        if not self.units:
            (x,) = cache
            return [x.T @ grad_logits, grad_logits.sum(axis=0)]
        x, hidden, mask = cache
        grad_hidden = grad_logits @ self.params[2].T
        if mask is not None:
            grad_hidden = grad_hidden * mask
        grad_hidden = grad_hidden * (hidden > 0)
        return [x.T @ grad_hidden, grad_hidden.sum(axis=0), hidden.T @ grad_logits, grad_logits.sum(axis=0)]

    def state(self) -> list[np.ndarray]:
        return [p.copy() for p in self.params]

    def restore(self, state: list[np.ndarray]) -> None:
        for p, saved in zip(self.params, state):
            p[...] = saved
