# A no-op Python worker for the handlers benchmark.
import os

from taskframe import Worker

Worker(
    handlers={"noop": lambda ctx: None},
    concurrency=int(os.environ.get("BENCH_CONCURRENCY", "64")),
    name="bench-python",
).run()
