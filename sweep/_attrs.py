"""Names of the attributes OCL stores on studies and trials, built in one place.

Everything lives under the ``ocl:`` prefix, so it never collides with another tool's attributes
and a person browsing optuna-dashboard sees at a glance which values OCL wrote.
"""

PREFIX = "ocl:"


def key(name: str) -> str:
    return PREFIX + name


SETTINGS = key("settings")  # study: JSON of the sweep settings (data, task, size, space, seed)
DATASET_INFO = key("dataset_info")  # study: modality, images, patients, fingerprint (for the dictionary)
TARGET = key("target_trials")  # study: finished trials wanted in total
EVALUATION = key("evaluation")  # study: the held-out test result of `ocl evaluate`
FAIL_REASON = key("fail_reason")  # trial: why a trial failed
SURPLUS = key("surplus")  # trial: asked after the target was already reached by other workers
WARM_START = key("warm_start")  # trial: enqueued by `ocl sweep --warm-start` at a dictionary layer
