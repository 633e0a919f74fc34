"""predict_in_batches: the one way OCL scores cached images with a Keras model."""

from __future__ import annotations

import numpy as np

from sweep._keras import keras_module
from sweep.model import predict_in_batches


def _tiny_model(outputs: int = 3):
    keras = keras_module()
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Flatten()(inputs)
    return keras.Model(inputs, keras.layers.Dense(outputs, activation="sigmoid")(x))


def test_batches_score_the_asked_rows_as_one_call_would():
    model = _tiny_model()
    images = np.random.default_rng(0).uniform(0, 255, (23, 8, 8)).astype(np.uint8)
    rows = np.array([20, 3, 3, 7, 11])
    whole = np.asarray(model(np.asarray(images, np.float32)[..., None]))
    np.testing.assert_allclose(predict_in_batches(model, images, rows, batch_size=2), whole[rows], rtol=1e-5, atol=1e-6)
    every = predict_in_batches(model, images, batch_size=5, description="scoring")  # with its (silent here) progress bar
    np.testing.assert_allclose(every, whole, rtol=1e-5, atol=1e-6)


def test_no_rows_is_an_empty_score_table_with_the_outputs_columns():
    model = _tiny_model(outputs=4)
    scores = predict_in_batches(model, np.zeros((5, 8, 8), np.uint8), np.array([], int))
    assert scores.shape == (0, 4)
