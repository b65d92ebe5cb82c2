import numpy as np

from qa.files import _best


def test_best_sentences_are_the_stable_sort_prefix_in_linear_time():
    rng = np.random.default_rng(0)
    for n in (1, 5, 100, 1000):
        for decimals in (1, 2, 6):  # few decimals: many ties at the cut
            scores = np.round(rng.random(n), decimals).astype(np.float32)
            for m in (1, 3, 150, 5000):
                assert list(_best(scores, m)) == list(np.argsort(-scores, kind="stable")[:m])
