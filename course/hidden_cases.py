"""The hidden cases of the gradient-check assignment: never in what students receive.

Each case is ``(description, input shapes, settings, seed)``, as the public cases of
``tinyres.lessons.exercises``; the generators copy them into the nbgrader and Otter
hidden tests, and ``tinyres grade --course`` reads them from here.  They vary what
the public cases fix: odd and non-square shapes, other strides, paddings, dilations,
batch sizes and seeds, so an answer tuned to the public cases does not pass them.
"""
HIDDEN_CASES = {
    "relu": [
        ("x (3, 7), seed 11", [(3, 7)], {}, 11),
        ("x (2, 4, 3, 5), seed 12", [(2, 4, 3, 5)], {}, 12),
    ],
    "max_pool2d": [
        ("x (2, 3, 8, 6), k (3, 2), stride (2, 1), pad (1, 0)", [(2, 3, 8, 6)],
         dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0)), 21),
        ("x (3, 1, 9, 9), k 3, stride 1, pad 1 (overlapping)", [(3, 1, 9, 9)],
         dict(kernel_size=3, stride=1, padding=1), 22),
    ],
    "conv2d": [
        ("x (3, 2, 8, 6), w (4, 2, 3, 2), stride (2, 1), pad (1, 0)", [(3, 2, 8, 6), (4, 2, 3, 2), (4,)],
         dict(stride=(2, 1), padding=(1, 0)), 31),
        ("x (2, 3, 9, 9), w (2, 3, 3, 3), stride 2, pad 2, dilation 2",
         [(2, 3, 9, 9), (2, 3, 3, 3), (2,)], dict(stride=2, padding=2, dilation=2), 32),
        ("x (4, 1, 5, 5), w (3, 1, 5, 5), pad 2", [(4, 1, 5, 5), (3, 1, 5, 5), (3,)],
         dict(padding=2), 33),
    ],
    "batch_norm": [
        ("x (5, 3, 2, 4), seed 41", [(5, 3, 2, 4), (3,), (3,)], {}, 41),
        ("x (16, 2, 3, 3), seed 42", [(16, 2, 3, 3), (2,), (2,)], {}, 42),
    ],
}
