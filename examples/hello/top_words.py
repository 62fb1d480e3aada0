"""Prints the most frequent words of the fetched text (a Python task)."""
import collections
import os
import re
import sys

work = os.environ.get("TASKFRAME_RUN_DIR") or os.path.join(
    os.environ.get("TMPDIR", "/tmp"), "taskframe-hello-" + os.environ["TASKFRAME_RUN_ID"]
)
limit = int(sys.argv[1]) if len(sys.argv) > 1 else 5
with open(os.path.join(work, "input.txt")) as text:
    words = re.findall(r"[a-z]+", text.read().lower())
top = collections.Counter(words).most_common(limit)
with open(os.path.join(work, "top"), "w") as out:
    out.write(", ".join(f"{word} ({count})" for word, count in top))
print("top words:", ", ".join(word for word, _ in top))
