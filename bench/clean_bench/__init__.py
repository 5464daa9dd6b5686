"""The clean benchmark's parts, run in this order by bench/clean.py.

- ``accuracy``: Conveyor's checks on the labeled corpus, and every tool's scores against it;
- ``peers``: cleanvision and imagededup, run by bench/peers_runner.py in their own venv;
- ``throughput``: uploads to verdicts end to end, paced latency, CPU by process;
- ``lookup``: near-duplicate lookup as the dataset's index grows;
- ``report``: the printed tables and their targets.

``stack`` says where the local stack and the repository are; ``stats`` holds the percentile and
ratio every part reports with.
"""
