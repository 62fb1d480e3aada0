"""Sums the score column per user parity: a stand-in for a real transform."""
import csv
import json
import os

work = os.environ.get("TASKFRAME_RUN_DIR") or os.path.join(
    os.environ.get("TMPDIR", "/tmp"), "taskframe-etl-" + os.environ["TASKFRAME_RUN_ID"]
)
totals = {"even": 0, "odd": 0}
with open(os.path.join(work, "records.csv")) as records:
    for day, user, score in csv.reader(records):
        totals["even" if int(user[4:]) % 2 == 0 else "odd"] += int(score)
with open(os.path.join(work, "totals.json"), "w") as out:
    json.dump(totals, out)
print("transformed:", totals)
