"""``python -m lmassist.bench ...``: one measurement in a fresh process, printed as one JSON line.

The benchmarks start it themselves (see :func:`lmassist.bench.common.run_child`); it is not a command
for people.
"""

from lmassist.bench.common import child_main
from lmassist.bench.llamacpp import measure

child_main(measure)
