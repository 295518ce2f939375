"""Make OpenBLAS's idle threads go to sleep at once, so that one timed call does not slow the next.

After every call it spreads over its threads, OpenBLAS keeps those threads spinning on the
cores for 2**THREAD_TIMEOUT cycles before they sleep: 2**28 by default, about 0.1 s.  The
benchmarks alternate implementations call by call with a 10 ms pause between them
(``alternation.py``), so whatever follows the NumPy textbook shared both cores with two
spinning threads.  Measured on the development machine (conv2d forward + backward,
16x32x32, batch 128, NumPy / Numba / PyTorch in turn): Numba 44 ms and PyTorch 37 ms with
the default, 28 ms and 17 ms with ``OPENBLAS_THREAD_TIMEOUT=4`` or with a 150 ms pause.

``OPENBLAS_THREAD_TIMEOUT`` takes the exponent, 4 to 30; OpenBLAS reads it once, when it
loads (with NumPy), so a benchmark imports this module before it imports NumPy.  A value
already in the environment is kept; every benchmark records it with the machine
(``machine.py``).
"""
import os

THREAD_TIMEOUT = "4"          # 2**4 cycles: the shortest spin OpenBLAS allows

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", THREAD_TIMEOUT)
