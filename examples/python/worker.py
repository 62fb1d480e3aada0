"""A Taskframe worker in Python: it registers three handlers with the sidecar
(TASKFRAME_SOCKET) and serves them until it is stopped (SIGTERM drains).
`task run examples/python/pipeline.yaml` starts it from the `workers:` map."""

import asyncio

from taskframe import task


@task.handler("count-words")
def count_words(ctx):
    words = ctx.json()["text"].split()
    ctx.log("counted %d words" % len(words))
    return {"words": len(words)}


@task.handler("shout")
async def shout(ctx):  # async handlers run on an asyncio loop of their own
    await asyncio.sleep(0.01)
    return ctx.json()["text"].upper()


@task.handler("flaky")
def flaky(ctx):
    if ctx.attempt <= ctx.json()["failures"]:
        raise RuntimeError("attempt %d fails on purpose" % ctx.attempt)
    ctx.log("succeeded on attempt %d" % ctx.attempt)
    return {"attempt": ctx.attempt}


if __name__ == "__main__":
    task.run(name="example-python", concurrency=8)
