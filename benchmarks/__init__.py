"""The benchmark suite: ``python -m benchmarks`` (``make bench``).

Not part of the tests. Every figure is a median over several runs, and
every comparison is a ratio of runs measured side by side, interleaved, in
the same invocation: the machine is shared and its speed drifts.
"""
