"""The benchmarks of ``ctr bench`` (serve, hotpath, batch-sizes, peers, harden, loadgen, ab; docs/serving.md)
and what only they use: the open-loop load generator and its latency histogram, the reference servers the
service is measured beside, the machine's CPU readings, and the Locust load test (``locustfile.py``)."""
