"""How many connections ``ctr bench harden``'s overload case opens: at most ``CONNECTIONS``, ``WARM_CONNECTIONS``
of them before each step unless ``--warm-connections`` says otherwise. A module of its own, so that the command
checks the option against the bound before any server starts, without importing the benchmark (a
``--warm-connections`` past the bound was cut to it without a word: loadgen warms ``min(warm, connections)``)."""

from __future__ import annotations

CONNECTIONS = 2048  # the generator's connections at most: independent clients, not a pool that queues them
# opened before each step: clients holding persistent connections. Under overload, a connection the
# generator opens mid-step took 25-85 ms (p50) to be ready on its own pinned core, and the 2% of
# requests that waited for one set the refusals' p99 (docs/serving.md, "The load generator"); on the faster
# Intel VM, twice its rate still needs more than 512, and most late 503s came on the connections opened then
# (docs/serving-log.md, "The overload row's slow 503s"; ``ctr bench harden --warm-connections`` sets it)
WARM_CONNECTIONS = 512
